//! The GOP framebuffer as a text console (issue 12): most desktops and laptops have no serial
//! port, so the human lines (begin summary, progress, final summary, "run finished") are drawn
//! on the screen the firmware left set up. Records stay on the serial console only.
//!
//! Glyphs come from `noto-sans-mono-bitmap` (Noto Sans Mono, pre-rasterised, 16 px, one byte of
//! intensity per pixel, `no_std`, no allocation): a well-kept font crate rather than a hand-made
//! font. A pixel of intensity `i` is drawn grey (i, i, i), so RGB and BGR layouts draw the same.
//! When the cursor passes the last row, the picture is copied up by one text row.
//!
//! Every access is an aligned 32-bit volatile access: on AArch64 the framebuffer lies in the
//! kernel's Device-nGnRnE mapping (everything below 4 GiB that is not RAM), where unaligned or
//! pair accesses that `memcpy` may use would fault (Arm ARM B2.5.2).

use alloc::format;
use alloc::string::String;

use handover::Framebuffer;
use noto_sans_mono_bitmap::{get_raster, get_raster_width, FontWeight, RasterHeight};

use crate::sync::Mutex;

const WEIGHT: FontWeight = FontWeight::Regular;
const HEIGHT: RasterHeight = RasterHeight::Size16;
/// Pixels left free around the text.
const MARGIN: usize = 8;

struct Screen {
    base: *mut u32,
    /// Pixels per scan line.
    stride: usize,
    cols: usize,
    rows: usize,
    col: usize,
    row: usize,
}

// SAFETY: the framebuffer pointer is only used under the SCREEN lock.
unsafe impl Send for Screen {}

static SCREEN: Mutex<Option<Screen>> = Mutex::new(None);

fn glyph_w() -> usize {
    get_raster_width(WEIGHT, HEIGHT)
}

fn glyph_h() -> usize {
    HEIGHT.val()
}

/// Take over the framebuffer the loader found if it can be drawn on; `mapped_end` is the end of
/// the physical range the kernel's page tables map (identity) on this arch. Returns the fact for
/// `begin.platform.screen`, or why the screen is unusable.
pub fn init(fb: &Framebuffer, mapped_end: u64) -> Result<String, String> {
    // Only the two 32-bit layouts (UEFI 2.10 12.9.2 EFI_GRAPHICS_PIXEL_FORMAT).
    match fb.format {
        handover::FB_RGB | handover::FB_BGR => {}
        handover::FB_BITMASK => {
            return Err("the GOP mode is PixelBitMask (only 32-bit RGB and BGR are drawn)".into())
        }
        handover::FB_BLT_ONLY => {
            return Err("the GOP mode is PixelBltOnly (no linear framebuffer)".into())
        }
        f => return Err(format!("unknown GOP pixel format {f}")),
    }
    if fb.base == 0 {
        return Err("no GOP framebuffer (the firmware drives no display)".into());
    }
    let (w, h, stride) = (fb.width as usize, fb.height as usize, fb.stride as usize);
    let bytes = (stride as u64) * (h as u64) * 4;
    if w == 0 || h == 0 || stride < w || bytes > fb.size {
        return Err(format!(
            "GOP mode {}x{} stride {} does not fit its {:#x}-byte framebuffer",
            fb.width, fb.height, fb.stride, fb.size
        ));
    }
    if !fb.base.is_multiple_of(4) || fb.base.checked_add(bytes).is_none_or(|e| e > mapped_end) {
        return Err(format!(
            "framebuffer at {:#x}+{bytes:#x} is outside the kernel's identity map (below {mapped_end:#x})",
            fb.base
        ));
    }
    let cols = w.saturating_sub(2 * MARGIN) / glyph_w();
    let rows = h.saturating_sub(2 * MARGIN) / glyph_h();
    if cols < 20 || rows < 4 {
        return Err(format!("GOP mode {w}x{h} is too small for text"));
    }
    let mut s = Screen {
        base: fb.base as *mut u32,
        stride,
        cols,
        rows,
        col: 0,
        row: 0,
    };
    s.clear(w, h);
    *SCREEN.lock() = Some(s);
    Ok(format!(
        "{cols}x{rows} text on the GOP framebuffer (Noto Sans Mono {}x{} glyphs)",
        glyph_w(),
        glyph_h()
    ))
}

/// Text to the screen, if there is one. `\n` starts a new line; other control bytes are dropped.
pub fn write(text: &str) {
    if let Some(s) = SCREEN.lock().as_mut() {
        s.write(text);
    }
}

/// [`write`](fn@write) for the end of the run, when a stuck core might hold the lock.
pub fn write_final(text: &str) {
    // SAFETY: the run is over; at worst a core that stopped mid-line leaves a garbled row.
    let mut g = unsafe { SCREEN.lock_or_break(1_000_000) };
    if let Some(s) = g.as_mut() {
        s.write(text);
    }
}

impl Screen {
    fn put(&mut self, x: usize, y: usize, v: u32) {
        // SAFETY: callers keep x < width and y < height; the framebuffer (stride*height pixels,
        // checked against its size in `init`) is identity-mapped and not used by anyone else.
        unsafe { self.base.add(y * self.stride + x).write_volatile(v) }
    }

    fn clear(&mut self, w: usize, h: usize) {
        for y in 0..h {
            for x in 0..w {
                self.put(x, y, 0);
            }
        }
    }

    fn write(&mut self, text: &str) {
        for c in text.chars() {
            match c {
                '\n' => self.newline(),
                '\r' => {}
                c if c.is_control() => {}
                c => {
                    if self.col == self.cols {
                        self.newline();
                    }
                    self.draw(c);
                    self.col += 1;
                }
            }
        }
    }

    fn draw(&mut self, c: char) {
        let raster = get_raster(c, WEIGHT, HEIGHT)
            .or_else(|| get_raster('?', WEIGHT, HEIGHT))
            .expect("the font has '?'");
        let x0 = MARGIN + self.col * glyph_w();
        let y0 = MARGIN + self.row * glyph_h();
        for (dy, line) in raster.rows().enumerate() {
            for (dx, &i) in line.iter().enumerate() {
                let i = u32::from(i);
                self.put(x0 + dx, y0 + dy, (i << 16) | (i << 8) | i);
            }
        }
    }

    fn newline(&mut self) {
        self.col = 0;
        if self.row + 1 < self.rows {
            self.row += 1;
            return;
        }
        // Scroll: copy every pixel row of the text area up by one glyph height, then blank the
        // last text row.
        let gh = glyph_h();
        let width = MARGIN + self.cols * glyph_w();
        let top = MARGIN;
        let bottom = MARGIN + self.rows * gh;
        for y in top..bottom - gh {
            for x in MARGIN..width {
                // SAFETY: as in `put`: both pixels lie inside the framebuffer.
                let v = unsafe { self.base.add((y + gh) * self.stride + x).read_volatile() };
                self.put(x, y, v);
            }
        }
        for y in bottom - gh..bottom {
            for x in MARGIN..width {
                self.put(x, y, 0);
            }
        }
    }
}
