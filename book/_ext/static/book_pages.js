// The book's page furniture (added to every page by book/_ext/book_pages.py; see its docstring).
(function () {
  "use strict";

  // Phones and tablets: both themes bind the ☰ and "on this page" handlers to the first
  // .primary-toggle / .secondary-toggle of the page. When pydata's top header has content, that
  // is its hidden copy and the visible buttons do nothing (pydata-sphinx-theme #2451); the book
  // keeps that header empty (_config.yml: navbar_persistent), and if it fills again, clicks on
  // every other copy are forwarded to the bound one.
  function forwardSidebarToggles() {
    [".primary-toggle", ".secondary-toggle"].forEach(function (selector) {
      var bound = document.querySelector(selector);
      if (!bound) return;
      document.querySelectorAll(selector).forEach(function (button) {
        if (button === bound) return;
        button.addEventListener("click", function (event) {
          event.preventDefault();
          event.stopImmediatePropagation();
          bound.click();
        }, true);
      });
    });
  }

  // Exercises: a solution is a dropdown admonition ("Solution N.M", its explanation) followed by
  // hide-cell code cells (its code and output). Move those cells inside the admonition, unfolded,
  // so that one click on the solution shows the explanation, the code and its output.
  function oneClickSolutions() {
    document.querySelectorAll(".admonition.dropdown").forEach(function (admonition) {
      var title = admonition.querySelector(":scope > .admonition-title");
      if (!title || !/^Solution\b/.test(title.textContent.trim())) return;
      admonition.classList.add("book-solution");
      var next = admonition.nextElementSibling;
      while (next && next.matches(".cell.tag_hide-cell, .cell.tag_hide-input")) {
        var cell = next;
        next = next.nextElementSibling;
        cell.querySelectorAll("details.hide").forEach(function (details) { details.open = true; });
        cell.classList.add("book-solution-code");
        admonition.appendChild(cell);
      }
    });
  }

  // Print and the whole-book PDF (tools/print_book.mjs calls this): every fold opens.
  function openEverything() {
    document.querySelectorAll("details").forEach(function (details) { details.open = true; });
    document.querySelectorAll(".toggle-hidden").forEach(function (el) {
      el.classList.remove("toggle-hidden");
    });
  }

  window.bookPages = { openEverything: openEverything };
  function init() {
    forwardSidebarToggles();
    oneClickSolutions();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
