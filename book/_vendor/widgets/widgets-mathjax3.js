/* Written for this book (not vendored). The widget renderer (embed-amd.js, @jupyter-widgets/html-manager)
 * typesets widget labels with MathJax 2's API, MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]); the
 * book loads MathJax 3, which has no Hub, so every widget label threw "Cannot read properties of undefined
 * (reading 'Queue')". This routes those calls to MathJax 3's typesetPromise. MathJax 3 (a deferred script)
 * has replaced window.MathJax by DOMContentLoaded, before the widgets render on `load`. */
document.addEventListener("DOMContentLoaded", function () {
  var mathjax = window.MathJax;
  if (!mathjax || mathjax.Hub) return;
  mathjax.Hub = {
    Queue: function (job) {
      var element = Array.isArray(job) ? job[2] : null;
      var ready = (mathjax.startup && mathjax.startup.promise) || Promise.resolve();
      ready.then(function () {
        if (mathjax.typesetPromise) return mathjax.typesetPromise(element ? [element] : undefined);
      }).catch(function (err) { console.warn("MathJax could not typeset a widget label", err); });
    }
  };
});
