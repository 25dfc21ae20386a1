// The presenter view's sizes, decided from measurements the view takes: the QR code's
// size for the screen, and the top question's font size for the box it has (as large as
// fits, within bounds; past the smallest, a line count to cut it at). Pure: the view
// measures and applies, these decide, so each rule is unit-tested.

/** The smallest the top question gets (a 500-character question at 1024×768 fits above it). */
export const PRESENTER_FONT_PX_MIN = 18;
/** The largest, as a share of the box's width and height (a short question stays a headline). */
export const FONT_SHARE_OF_WIDTH = 0.07;
export const FONT_SHARE_OF_HEIGHT = 0.22;
/** The QR code's bounds and its share of the screen's shorter side. */
export const QR_PX_MIN = 140;
export const QR_PX_MAX = 520;
export const QR_SHARE_OF_SCREEN = 0.3;

/** The QR code grows with the screen, so the back of a large room can still scan it. */
export function qrCodePx(viewWidth, viewHeight) {
  return Math.round(Math.min(QR_PX_MAX, Math.max(QR_PX_MIN, QR_SHARE_OF_SCREEN * Math.min(viewWidth, viewHeight))));
}

/** The largest font size worth trying in a box this size, whole pixels, never below the minimum. */
export function largestFontPx(boxWidth, boxHeight) {
  return Math.floor(
    Math.max(PRESENTER_FONT_PX_MIN, Math.min(boxWidth * FONT_SHARE_OF_WIDTH, boxHeight * FONT_SHARE_OF_HEIGHT)),
  );
}

/**
 * The largest whole size from `low` to `high` at which `fitsAt(size)` holds, trying `high`
 * first, then by binary search (fitting is taken to get no easier as the size grows).
 * `low` itself is never tried: it is the answer when nothing larger fits, fitting or not.
 */
export function largestFit(low, high, fitsAt) {
  if (fitsAt(high)) return high;
  let fitting = low;
  let tooLarge = high;
  while (tooLarge - fitting > 1) {
    const middle = Math.floor((fitting + tooLarge) / 2);
    if (fitsAt(middle)) fitting = middle;
    else tooLarge = middle;
  }
  return fitting;
}

/**
 * How many lines to keep of a text `textHeightPx` tall that overflows its box by
 * `overflowPx`: the lines that fit, at least one.
 */
export function linesThatFit({ textHeightPx, overflowPx, lineHeightPx }) {
  const lines = Math.round(textHeightPx / lineHeightPx);
  return Math.max(1, lines - Math.ceil(overflowPx / lineHeightPx));
}
