/*! partner-engine t.js: carries a partner click id from the landing page into checkout.
 * Served by the deployment at GET /t.js?program=<id> (docs/integration.md). No dependencies.
 * Does nothing at all for a visitor without a click id. */
(function (w, d) {
  "use strict";
  var DAYS = __COOKIE_DAYS__; // the program's cookie days, filled in when the script is served
  var PARAM = "__CLICK_PARAM__"; // the query parameter the partner redirect appends
  var REDIRECT_COOKIE = "__CLICK_PARAM__"; // the redirect's own cookie, readable on a shared domain
  var COOKIE = "pe_ref_click"; // this script's first-party cookie on the merchant's domain
  var FIELD = "ref_click"; // hidden form fields filled with the click id
  var ID = /^[A-Za-z0-9_-]{16,64}$/; // a click id's shape (tracking::click_id)

  function valid(v) {
    return typeof v === "string" && ID.test(v) ? v : null;
  }
  function fromUrl() {
    var m = new RegExp("[?&]" + PARAM + "=([^&#]*)").exec(w.location.search);
    try {
      return m ? valid(decodeURIComponent(m[1])) : null;
    } catch (e) {
      return null;
    }
  }
  function readCookie(name) {
    var m = new RegExp("(?:^|;\\s*)" + name + "=([^;]*)").exec(d.cookie);
    return m ? valid(m[1]) : null;
  }
  function keep(id) {
    var secure = w.location.protocol === "https:" ? "; Secure" : "";
    d.cookie = COOKIE + "=" + id + "; Max-Age=" + DAYS * 86400 + "; Path=/; SameSite=Lax" + secure;
  }

  // A click id in the URL (or the redirect's cookie) is the newest: it is kept, and restarts
  // the window. Otherwise the one kept by an earlier page view, until its cookie expires.
  var fresh = fromUrl() || readCookie(REDIRECT_COOKIE);
  var kept = readCookie(COOKIE);
  var id = fresh || kept;
  if (fresh && fresh !== kept) keep(fresh);

  function isCheckoutLink(a) {
    return (
      a.hasAttribute("data-ref-click") ||
      /^https:\/\/buy\.stripe\.com\//.test(a.href || "")
    );
  }
  function decorateLink(a) {
    if (!id || !isCheckoutLink(a)) return;
    var href = a.getAttribute("href") || "";
    if (/[?&]client_reference_id=/.test(href)) return;
    var hash = "";
    var i = href.indexOf("#");
    if (i >= 0) {
      hash = href.slice(i);
      href = href.slice(0, i);
    }
    a.setAttribute(
      "href",
      href + (href.indexOf("?") >= 0 ? "&" : "?") + "client_reference_id=" + encodeURIComponent(id) + hash
    );
  }
  function decorate() {
    if (!id) return;
    var links = d.getElementsByTagName("a");
    for (var i = 0; i < links.length; i++) decorateLink(links[i]);
    var fields = d.querySelectorAll('input[name="' + FIELD + '"], input[data-ref-click]');
    for (var j = 0; j < fields.length; j++) if (!fields[j].value) fields[j].value = id;
  }

  w.partnerEngine = {
    /** The visitor's click id, or null: pass it to a server-side Checkout Session as
     * client_reference_id, or to POST /v1/track/lead as click_id. */
    clickId: function () {
      return id;
    },
    /** Decorate links and fields added to the page after it loaded. */
    decorate: decorate,
  };
  if (!id) return;
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", decorate);
  else decorate();
  // Links added later get the id when they are followed.
  d.addEventListener(
    "click",
    function (e) {
      var a = e.target && e.target.closest ? e.target.closest("a") : null;
      if (a) decorateLink(a);
    },
    true
  );
})(window, document);
