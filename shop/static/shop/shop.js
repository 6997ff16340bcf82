// Progressive enhancement: cart forms post with fetch and the page updates in place.
// Without this script every form still works (POST, redirect, GET).
(function () {
  "use strict";

  function money(cents) {
    var sign = cents < 0 ? "-" : "";
    return sign + "$" + (Math.abs(cents) / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function say(text, isError) {
    var box = document.getElementById("messages");
    if (!box) return;
    box.innerHTML = "";
    var p = document.createElement("p");
    p.className = "message " + (isError ? "error" : "success");
    p.setAttribute("role", isError ? "alert" : "status");
    p.textContent = text;
    box.appendChild(p);
  }

  // The warning of a cart line that asks for more than the stock holds (the server's words in shop/selectors.py).
  function shortage(line, available) {
    if (available === null || available === undefined || line.quantity <= available) return "";
    if (available <= 0) return line.name + " is out of stock now; remove it to check out.";
    return "Only " + available + " " + line.name + " left; lower the quantity to check out.";
  }

  function renderStock(page, cart, stock) {
    var box = document.getElementById("stock-warnings");
    if (!box || !stock) return;
    box.innerHTML = "";
    cart.lines.forEach(function (line) {
      var available = stock[line.sku];
      var row = page.querySelector('tr[data-sku="' + CSS.escape(line.sku) + '"]');
      var input = row && row.querySelector("input[name=quantity]");
      if (input && typeof available === "number") input.max = Math.max(Math.min(available, 99), 0);
      var text = shortage(line, available);
      if (row) row.classList.toggle("short", !!text);
      if (!text) return;
      var p = document.createElement("p");
      p.className = "message error";
      p.textContent = text;
      box.appendChild(p);
    });
  }

  function render(cart, stock) {
    var count = document.getElementById("cart-count");
    if (count) count.textContent = cart.item_count;
    var page = document.querySelector("[data-cart-page]");
    if (!page) return;
    var bySku = {};
    cart.lines.forEach(function (line) { bySku[line.sku] = line; });
    page.querySelectorAll("tr[data-sku]").forEach(function (row) {
      var line = bySku[row.getAttribute("data-sku")];
      if (!line) { row.remove(); return; }
      row.querySelector(".line-total").textContent = money(line.line_total_cents);
      row.querySelector(".unit").textContent = money(line.unit_price_cents);
      var input = row.querySelector("input[name=quantity]");
      if (input && document.activeElement !== input) input.value = line.quantity;
    });
    var empty = cart.lines.length === 0;
    page.querySelector(".empty").hidden = !empty;
    ["table.cart", ".totals", ".checkout"].forEach(function (sel) {
      var el = page.querySelector(sel);
      if (el) el.hidden = empty;
    });
    var set = function (id, text) { var el = document.getElementById(id); if (el) el.textContent = text; };
    set("item-count", cart.item_count);
    set("subtotal", money(cart.subtotal_cents));
    set("total", money(cart.total_cents));
    set("checkout-total", money(cart.total_cents));
    var expected = page.querySelector("input[name=expected_total]");
    if (expected) expected.value = cart.total_cents;  // the total the shopper sees is the one checkout expects
    renderStock(page, cart, stock);
  }

  // 202 {"pending"}: the call outlived the server's wait; say so and ask the pending URL until it is done.
  function answered(response) {
    return response.json().then(function (data) {
      if (response.status === 202 && data.pending) {
        say(data.message, false);
        return new Promise(function (resolve) { setTimeout(resolve, 500); }).then(function () {
          return fetch(data.pending, { credentials: "same-origin", headers: { "Accept": "application/json" } });
        }).then(answered);
      }
      if (!response.ok) { say(data.message || "Something went wrong.", true); return; }
      render(data.cart, data.stock);
      say(data.message, false);
    });
  }

  // Focus stays where the shopper was: on the button that was pressed, or, when its row went away (Remove), on
  // the next row's same button, else the previous row's, else the cart's "empty" line.
  function keepFocus(button, row, next, previous) {
    var active = document.activeElement;
    if (active && active !== document.body && active !== button) return;
    if (button && document.contains(button)) { button.focus(); return; }
    var label = button && button.textContent.trim();
    [next, previous].some(function (other) {
      if (!other || !document.contains(other)) return false;
      var same = Array.prototype.find.call(other.querySelectorAll("button"), function (b) { return b.textContent.trim() === label; });
      if (same) same.focus();
      return !!same;
    });
    if (document.activeElement === document.body) {
      var empty = document.querySelector("[data-cart-page] .empty");
      if (empty && !empty.hidden) { empty.setAttribute("tabindex", "-1"); empty.focus(); }
    }
  }

  // This tab's own changes: a live refresh that overlaps one shows the cart but does not announce a change made
  // elsewhere (the change is the shopper's own, answered by its own message).
  var own = { inFlight: 0, generation: 0 };

  function submitCartForm(form) {
    var button = form.querySelector("button[type=submit]");
    var row = form.closest("tr");
    var next = row && row.nextElementSibling, previous = row && row.previousElementSibling;
    if (button) button.setAttribute("aria-disabled", "true");
    if (form.getAttribute("data-busy")) return Promise.resolve();
    form.setAttribute("data-busy", "1");
    own.inFlight += 1;
    own.generation += 1;
    var token = form.querySelector("input[name=csrfmiddlewaretoken]");
    var sent = false;
    return fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": token ? token.value : "" }
    }).then(function (response) {
      sent = true;
      return answered(response);
    }).catch(function () {
      // Not sent: fall back to a normal post. Sent (the change may be made): never post it a second time.
      if (sent) say("The page lost track of that change; reload it to see your cart.", true);
      else form.submit();
    }).finally(function () {
      own.inFlight -= 1;
      own.generation += 1;
      form.removeAttribute("data-busy");
      if (button) button.removeAttribute("aria-disabled");
      keepFocus(button, row, next, previous);
    });
  }

  // Live updates (docs/shop.md): the cart's committed changes arrive as Server-Sent Events, from this tab, another
  // one or an operator; each one re-reads the priced cart. A line the cart page does not show yet reloads the
  // cart's part of the page. Without EventSource the page shows the cart as it was loaded.
  function follow() {
    var url = document.body.getAttribute("data-cart-watch");
    var json = document.body.getAttribute("data-cart-json");
    if (!url || !json || !window.EventSource || !window.fetch) return;
    var busy = false, again = false;
    function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      var generation = own.generation, quiet = own.inFlight > 0;
      fetch(json, { credentials: "same-origin", headers: { "Accept": "application/json" } }).then(function (response) {
        return response.ok ? response.json() : null;
      }).then(function (data) {
        if (generation !== own.generation) { again = true; return; }  // read before this tab's own change: read again
        if (data && data.cart) return show(data.cart, data.stock, !quiet);
      }).catch(function () {}).finally(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
    }
    var source = new EventSource(url);
    source.onmessage = refresh;
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // A live update that changes the total under the checkout button: the page says so, the button asks to confirm
  // the new amount and takes no click for a moment, so a click aimed at the old amount never pays the new one.
  var HOLD_MS = 1500;

  function totalChanged(seen, cart) {
    var button = document.querySelector("[data-cart-page] .checkout button[type=submit]");
    if (!button || !cart.lines.length) return;
    var total = document.getElementById("checkout-total");
    button.textContent = "Confirm and pay ";
    if (total) button.appendChild(total);
    var focused = document.activeElement === button;
    button.disabled = true;
    say("Your cart changed elsewhere: the total is now " + money(cart.total_cents) + ", not " + money(seen) +
        ". Check it, then confirm to pay.", true);
    clearTimeout(totalChanged.timer);
    totalChanged.timer = setTimeout(function () {
      button.disabled = false;
      if (focused && document.activeElement === document.body) button.focus();
    }, HOLD_MS);
  }

  function show(cart, stock, announce) {
    var page = document.querySelector("[data-cart-page]");
    var expected = page && page.querySelector("input[name=expected_total]");
    var seen = expected ? parseInt(expected.value, 10) : NaN;
    var shown = function () {
      if (announce && !isNaN(seen) && seen !== cart.total_cents) totalChanged(seen, cart);
    };
    var missing = page && cart.lines.some(function (line) {
      return !page.querySelector('tr[data-sku="' + CSS.escape(line.sku) + '"]');
    });
    if (!missing) { render(cart, stock); shown(); return; }
    return fetch(page.getAttribute("data-cart-page") || window.location.pathname, { credentials: "same-origin" }).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      var fresh = html && new DOMParser().parseFromString(html, "text/html").querySelector("[data-cart-page]");
      if (!fresh) { render(cart, stock); shown(); return; }
      var focused = document.activeElement && document.activeElement.id;
      page.innerHTML = fresh.innerHTML;
      render(cart, stock);
      shown();
      var again = focused && document.getElementById(focused);
      if (again) again.focus();
    });
  }

  follow();

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.hasAttribute("data-cart-form") && window.fetch && window.FormData) {
      event.preventDefault();
      submitCartForm(form);
    } else if (form.hasAttribute("data-once")) {
      // A second click while the first request runs would only repeat it (the token makes it harmless).
      var button = form.querySelector("button[type=submit]");
      if (button) setTimeout(function () { button.disabled = true; }, 0);
    }
  });
})();
