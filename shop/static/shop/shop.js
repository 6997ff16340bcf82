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

  function submitCartForm(form) {
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
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
      if (button) button.disabled = false;
    });
  }

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
