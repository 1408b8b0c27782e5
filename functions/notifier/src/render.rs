//! The e-mail templates (`templates/`, compiled into the binary) and their rendering.
//!
//! Each message kind has three templates: `{kind}.subject.txt` (one line), `{kind}.html` (which
//! extends `layout.html`; HTML-escaped) and `{kind}.txt` (which extends `layout.txt`). Every value
//! a template shows is formatted before rendering ([`crate::compose`]), so templates only place
//! text: amounts with their currency in the program's locale, dates as the locale writes them.

use minijinja::Environment;
use serde::Serialize;

/// Every template file, by name (a test checks each kind has its three).
pub const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../templates/layout.html")),
    ("layout.txt", include_str!("../templates/layout.txt")),
    (
        "commission_earned.subject.txt",
        include_str!("../templates/commission_earned.subject.txt"),
    ),
    (
        "commission_earned.html",
        include_str!("../templates/commission_earned.html"),
    ),
    (
        "commission_earned.txt",
        include_str!("../templates/commission_earned.txt"),
    ),
    (
        "commission_reversed.subject.txt",
        include_str!("../templates/commission_reversed.subject.txt"),
    ),
    (
        "commission_reversed.html",
        include_str!("../templates/commission_reversed.html"),
    ),
    (
        "commission_reversed.txt",
        include_str!("../templates/commission_reversed.txt"),
    ),
    (
        "payout_sent.subject.txt",
        include_str!("../templates/payout_sent.subject.txt"),
    ),
    (
        "payout_sent.html",
        include_str!("../templates/payout_sent.html"),
    ),
    (
        "payout_sent.txt",
        include_str!("../templates/payout_sent.txt"),
    ),
    (
        "payout_failed.subject.txt",
        include_str!("../templates/payout_failed.subject.txt"),
    ),
    (
        "payout_failed.html",
        include_str!("../templates/payout_failed.html"),
    ),
    (
        "payout_failed.txt",
        include_str!("../templates/payout_failed.txt"),
    ),
    (
        "payout_waiting.subject.txt",
        include_str!("../templates/payout_waiting.subject.txt"),
    ),
    (
        "payout_waiting.html",
        include_str!("../templates/payout_waiting.html"),
    ),
    (
        "payout_waiting.txt",
        include_str!("../templates/payout_waiting.txt"),
    ),
    (
        "forfeit_warning.subject.txt",
        include_str!("../templates/forfeit_warning.subject.txt"),
    ),
    (
        "forfeit_warning.html",
        include_str!("../templates/forfeit_warning.html"),
    ),
    (
        "forfeit_warning.txt",
        include_str!("../templates/forfeit_warning.txt"),
    ),
    (
        "forfeited.subject.txt",
        include_str!("../templates/forfeited.subject.txt"),
    ),
    (
        "forfeited.html",
        include_str!("../templates/forfeited.html"),
    ),
    ("forfeited.txt", include_str!("../templates/forfeited.txt")),
    (
        "level_promoted.subject.txt",
        include_str!("../templates/level_promoted.subject.txt"),
    ),
    (
        "level_promoted.html",
        include_str!("../templates/level_promoted.html"),
    ),
    (
        "level_promoted.txt",
        include_str!("../templates/level_promoted.txt"),
    ),
    (
        "partner_invite.subject.txt",
        include_str!("../templates/partner_invite.subject.txt"),
    ),
    (
        "partner_invite.html",
        include_str!("../templates/partner_invite.html"),
    ),
    (
        "partner_invite.txt",
        include_str!("../templates/partner_invite.txt"),
    ),
];

/// A rendered e-mail's three parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
#[error("template {template}: {source}")]
pub struct RenderError {
    pub template: String,
    #[source]
    pub source: minijinja::Error,
}

/// The templates, parsed once per process.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn load() -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(false);
        for (name, source) in TEMPLATES {
            env.add_template(name, source).map_err(|e| RenderError {
                template: (*name).to_string(),
                source: e,
            })?;
        }
        Ok(Templates { env })
    }

    /// Render `kind`'s three templates with `ctx` (the subject is trimmed to one line; the
    /// HTML layout gets the subject as its title).
    pub fn render<C: Serialize>(&self, kind: &str, ctx: &C) -> Result<Rendered, RenderError> {
        let mut json = serde_json::to_value(ctx).map_err(|e| RenderError {
            template: kind.to_string(),
            source: minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string()),
        })?;
        let value = minijinja::Value::from_serialize(&json);
        let one = |name: String, v: &minijinja::Value| -> Result<String, RenderError> {
            let t = self.env.get_template(&name).map_err(|e| RenderError {
                template: name.clone(),
                source: e,
            })?;
            t.render(v).map_err(|e| RenderError {
                template: name,
                source: e,
            })
        };
        let subject = one(format!("{kind}.subject.txt"), &value)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(o) = json.as_object_mut() {
            o.insert("subject".into(), serde_json::Value::String(subject.clone()));
        }
        let html = one(
            format!("{kind}.html"),
            &minijinja::Value::from_serialize(&json),
        )?;
        let text = tidy(&one(format!("{kind}.txt"), &value)?);
        Ok(Rendered {
            subject,
            html,
            text,
        })
    }
}

/// Plain text without trailing spaces and with at most one blank line in a row.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_matches('\n').to_string() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_email_kind_has_its_three_templates() {
        let names: Vec<&str> = TEMPLATES.iter().map(|(n, _)| *n).collect();
        for k in messages::Consumer::Email.kinds() {
            for part in ["subject.txt", "html", "txt"] {
                let n = format!("{k}.{part}");
                assert!(names.contains(&n.as_str()), "missing template {n}");
            }
        }
        // And every file in templates/ is compiled in.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        for f in std::fs::read_dir(dir).unwrap() {
            let f = f.unwrap().file_name().into_string().unwrap();
            assert!(names.contains(&f.as_str()), "{f} is not in TEMPLATES");
        }
        Templates::load().unwrap();
    }

    #[test]
    fn text_is_tidied() {
        assert_eq!(tidy("a  \n\n\n\nb\n\n"), "a\n\nb\n");
    }
}
