// Before/after slider: the "before" image is clipped to the left of the handle; drag the image or the range.
(function () {
  document.querySelectorAll(".slider").forEach(function (slider) {
    var frame = slider.querySelector(".slider-frame");
    var range = slider.querySelector("input[type=range]");
    var before = slider.querySelector("img.before");
    var after = slider.querySelector("img.after");
    var line = slider.querySelector(".slider-line");
    function update() {
      var position = Number(range.value);
      before.style.clipPath = "inset(0 " + (100 - position) + "% 0 0)";
      line.style.left = position + "%";
      slider.dataset.position = String(position);
    }
    function follow(event) {
      var box = frame.getBoundingClientRect();
      var fraction = Math.min(Math.max((event.clientX - box.left) / box.width, 0), 1);
      range.value = String(Math.round(fraction * 100));
      update();
    }
    range.addEventListener("input", update);
    frame.addEventListener("pointerdown", function (event) {
      event.preventDefault();  // no native image drag
      frame.setPointerCapture(event.pointerId);
      follow(event);
    });
    frame.addEventListener("pointermove", function (event) { if (event.buttons) { follow(event); } });
    slider.querySelector("select.before").addEventListener("change", function (event) {
      before.src = event.target.value;
      before.alt = event.target.selectedOptions[0].textContent;
    });
    slider.querySelector("select.after").addEventListener("change", function (event) {
      after.src = event.target.value;
      after.alt = event.target.selectedOptions[0].textContent;
    });
    update();
  });
})();
