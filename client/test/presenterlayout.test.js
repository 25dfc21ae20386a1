import { describe, expect, it } from 'vitest';
import * as layout from '../src/lib/presenterlayout.js';

const { PRESENTER_FONT_PX_MIN, QR_PX_MAX, QR_PX_MIN, largestFit, largestFontPx, linesThatFit, qrCodePx } = layout;

describe('the QR code in the presenter view', () => {
  it('takes a share of the shorter side, within its bounds', () => {
    expect(qrCodePx(1280, 720)).toBe(216);
    expect(qrCodePx(720, 1280)).toBe(216);
    expect(qrCodePx(320, 240)).toBe(QR_PX_MIN);
    expect(qrCodePx(3840, 2160)).toBe(QR_PX_MAX);
  });
});

describe('the top question’s font size', () => {
  it('tries at most a share of the box, and never less than the minimum', () => {
    // 7 % of the width is the smaller share here.
    expect(largestFontPx(1000, 500)).toBe(70);
    // 22 % of the height is the smaller share here.
    expect(largestFontPx(1000, 200)).toBe(44);
    expect(largestFontPx(100, 50)).toBe(PRESENTER_FONT_PX_MIN);
  });

  it('finds the largest size that fits, trying the largest first', () => {
    const tried = [];
    const fitsUpTo = (limit) => (px) => {
      tried.push(px);
      return px <= limit;
    };
    expect(largestFit(18, 70, fitsUpTo(70))).toBe(70);
    expect(tried).toEqual([70]);
    for (const limit of [18, 19, 33, 44, 69]) {
      expect(largestFit(18, 70, fitsUpTo(limit))).toBe(limit);
    }
  });

  it('answers the smallest size when nothing fits, without trying it', () => {
    const tried = [];
    const size = largestFit(18, 40, (px) => {
      tried.push(px);
      return false;
    });
    expect(size).toBe(18);
    expect(tried).not.toContain(18);
  });

  it('keeps the lines that fit when even the smallest size overflows, at least one', () => {
    // 10 lines of 20 px, 45 px too tall: 3 lines (60 px) go.
    expect(linesThatFit({ textHeightPx: 200, overflowPx: 45, lineHeightPx: 20 })).toBe(7);
    expect(linesThatFit({ textHeightPx: 200, overflowPx: 40, lineHeightPx: 20 })).toBe(8);
    expect(linesThatFit({ textHeightPx: 40, overflowPx: 500, lineHeightPx: 20 })).toBe(1);
  });
});
