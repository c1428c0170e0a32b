//! The take-home sheet as a PDF (A4), laid out here and written by printpdf with the
//! DejaVu Sans fonts embedded (subset), so any Latin, Greek or Cyrillic name prints.
//! Same content and order as the HTML sheet: header, one framed block per exercise
//! (number and name, the dose in words, the numbered steps), at most three exercises a
//! page, and a footer with the production date and the page number on every page.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use printpdf::{
    Color, FontId, Mm, Op, PaintMode, ParsedFont, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Pt, RawImage, Rect, Rgb, TextItem, XObjectTransform,
};

use super::{Handout, PER_PAGE};

const PAGE_W: f32 = 595.28; // A4 in points
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 45.0; // about 16 mm
const CONTENT_W: f32 = PAGE_W - 2.0 * MARGIN;
const FOOTER_H: f32 = 30.0;
const BOX_PAD: f32 = 10.0;
const IMAGE_MAX_W: f32 = 170.0; // 60 mm, as on the HTML sheet
const IMAGE_MAX_H: f32 = 128.0; // 45 mm

/// The two faces, parsed once per process (parsing the font is the costly part).
struct Faces {
    regular: ParsedFont,
    bold: ParsedFont,
}

fn faces() -> &'static Faces {
    static FACES: OnceLock<Faces> = OnceLock::new();
    FACES.get_or_init(|| Faces {
        regular: parse(dejavu::sans::regular()),
        bold: parse(dejavu::sans::bold()),
    })
}

fn parse(bytes: &[u8]) -> ParsedFont {
    // The font is compiled into the binary and known to parse; an unparsable font here
    // would be a build defect, caught by the tests of this module.
    ParsedFont::from_bytes(bytes, 0, &mut Vec::new()).expect("embedded DejaVu font parses")
}

#[derive(Clone, Copy, PartialEq)]
enum Face {
    Regular,
    Bold,
}

impl Faces {
    fn font(&self, face: Face) -> &ParsedFont {
        match face {
            Face::Regular => &self.regular,
            Face::Bold => &self.bold,
        }
    }

    /// Width of `text` in points at `size`.
    fn width(&self, face: Face, size: f32, text: &str) -> f32 {
        let font = self.font(face);
        let units: u32 = text
            .chars()
            .map(|c| {
                font.lookup_glyph_index(c as u32)
                    .and_then(|g| font.get_glyph_width(g))
                    .unwrap_or(font.units_per_em / 2) as u32
            })
            .sum();
        units as f32 * size / f32::from(font.units_per_em.max(1))
    }

    /// Greedy word wrap to `width` points; a word longer than a line is cut by characters.
    fn wrap(&self, face: Face, size: f32, width: f32, text: &str) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.lines() {
            let mut line = String::new();
            for word in paragraph.split_whitespace() {
                let candidate = if line.is_empty() {
                    word.to_string()
                } else {
                    format!("{line} {word}")
                };
                if self.width(face, size, &candidate) <= width {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                // The word alone: cut it when it is wider than a line.
                for c in word.chars() {
                    let mut next = line.clone();
                    next.push(c);
                    if !line.is_empty() && self.width(face, size, &next) > width {
                        lines.push(std::mem::take(&mut line));
                        line.push(c);
                    } else {
                        line = next;
                    }
                }
            }
            if !line.is_empty() {
                lines.push(line);
            }
        }
        lines
    }
}

/// One line of text placed on a page.
struct Run {
    face: Face,
    size: f32,
    x: f32,
    y: f32,
    text: String,
}

/// A picture placed on a page: its pixels, lower-left corner and size in points.
struct Picture {
    image: RawImage,
    x: f32,
    y: f32,
    w: f32,
    h: f32,
}

/// A page being filled from the top.
#[derive(Default)]
struct Sheet {
    runs: Vec<Run>,
    rects: Vec<(Rect, Rgb)>,
    pictures: Vec<Picture>,
}

/// Text lines of a block with their offsets from its top, and its height.
struct Block {
    lines: Vec<(Face, f32, f32, f32, String)>, // face, size, x offset, y offset, text
    fill: Option<(f32, f32, f32)>,             // y offset, width and height of the dose band
    picture: Option<(RawImage, f32, f32)>,     // pixels, width and height in points
    height: f32,
}

/// The pixels of a `data:` URL picture (PNG or JPEG), with its printed size: at most
/// 60 x 45 mm, never enlarged past one pixel a point. Other pictures are left out.
fn picture(src: &str) -> Option<(RawImage, f32, f32)> {
    let data = src.strip_prefix("data:")?;
    let (kind, b64) = data.split_once(";base64,")?;
    if kind != "image/png" && kind != "image/jpeg" {
        return None;
    }
    let bytes = STANDARD.decode(b64).ok()?;
    let image = RawImage::decode_from_bytes(&bytes, &mut Vec::new()).ok()?;
    let (w, h) = (image.width as f32, image.height as f32);
    if w < 1.0 || h < 1.0 {
        return None;
    }
    let scale = (IMAGE_MAX_W / w).min(IMAGE_MAX_H / h).min(1.0);
    Some((image, w * scale, h * scale))
}

fn leading(size: f32) -> f32 {
    size * 1.35
}

/// The lines of one exercise, laid out inside a box of the content width; the text
/// runs beside the picture when there is one.
fn exercise_block(f: &Faces, number: usize, e: &super::HandoutExercise) -> Block {
    let picture = e.image.as_deref().and_then(picture);
    let beside = picture.as_ref().map_or(0.0, |(_, w, _)| w + 10.0);
    let inner = CONTENT_W - 2.0 * BOX_PAD - beside;
    let mut lines = Vec::new();
    let mut y = BOX_PAD;
    for l in f.wrap(Face::Bold, 14.0, inner, &format!("{number}. {}", e.name)) {
        y += leading(14.0);
        lines.push((Face::Bold, 14.0, BOX_PAD, y, l));
    }
    y += 6.0;
    let band_top = y;
    for l in f.wrap(Face::Bold, 11.0, inner - 8.0, &e.dose) {
        y += leading(11.0);
        lines.push((Face::Bold, 11.0, BOX_PAD + 4.0, y, l));
    }
    y += 5.0;
    let fill = Some((band_top, inner, y - band_top));
    for (i, step) in e.steps.iter().enumerate() {
        let label = format!("{}.", i + 1);
        let indent = 18.0;
        y += 3.0;
        for (j, l) in f
            .wrap(Face::Regular, 11.0, inner - indent, step)
            .into_iter()
            .enumerate()
        {
            y += leading(11.0);
            if j == 0 {
                lines.push((Face::Regular, 11.0, BOX_PAD, y, label.clone()));
            }
            lines.push((Face::Regular, 11.0, BOX_PAD + indent, y, l));
        }
    }
    let text_height = y + BOX_PAD + 3.0;
    let picture_height = picture.as_ref().map_or(0.0, |(_, _, h)| h + 2.0 * BOX_PAD);
    Block {
        lines,
        fill,
        picture,
        height: text_height.max(picture_height),
    }
}

/// The sheet as PDF bytes.
pub fn render_pdf(h: &Handout) -> Vec<u8> {
    let f = faces();
    let mut pages: Vec<Sheet> = vec![Sheet::default()];
    let mut y = PAGE_H - MARGIN;

    // Header: title, then the facts, then a rule.
    for l in f.wrap(Face::Bold, 18.0, CONTENT_W, &h.title) {
        y -= leading(18.0);
        pages[0].runs.push(Run {
            face: Face::Bold,
            size: 18.0,
            x: MARGIN,
            y,
            text: l,
        });
    }
    let mut facts = vec![format!("Patient: {}", h.patient)];
    if let Some(t) = &h.therapist {
        facts.push(format!("Therapist: {t}"));
    }
    if !h.contacts.is_empty() {
        facts.push(format!("Contact: {}", h.contacts.join(", ")));
    }
    facts.push(format!("Program: {}", h.period));
    y -= 4.0;
    for fact in facts {
        for l in f.wrap(Face::Regular, 11.0, CONTENT_W, &fact) {
            y -= leading(11.0);
            pages[0].runs.push(Run {
                face: Face::Regular,
                size: 11.0,
                x: MARGIN,
                y,
                text: l,
            });
        }
    }
    y -= 8.0;
    pages[0].rects.push((
        Rect {
            x: Pt(MARGIN),
            y: Pt(y),
            width: Pt(CONTENT_W),
            height: Pt(1.5),
            mode: Some(PaintMode::Fill),
            winding_order: None,
        },
        Rgb::new(0.2, 0.2, 0.2, None),
    ));
    y -= 16.0;

    if h.exercises.is_empty() {
        y -= leading(11.0);
        pages[0].runs.push(Run {
            face: Face::Regular,
            size: 11.0,
            x: MARGIN,
            y,
            text: "No exercises yet.".into(),
        });
    }
    let bottom = MARGIN + FOOTER_H;
    let mut on_page = 0;
    for (i, e) in h.exercises.iter().enumerate() {
        let block = exercise_block(f, i + 1, e);
        if on_page == PER_PAGE || (on_page > 0 && y - block.height < bottom) {
            pages.push(Sheet::default());
            y = PAGE_H - MARGIN;
            on_page = 0;
        }
        let page = pages.last_mut().expect("at least one page");
        let top = y;
        if let Some((image, w, h)) = block.picture {
            page.pictures.push(Picture {
                image,
                x: MARGIN + CONTENT_W - BOX_PAD - w,
                y: top - BOX_PAD - h,
                w,
                h,
            });
        }
        if let Some((off, width, height)) = block.fill {
            page.rects.push((
                Rect {
                    x: Pt(MARGIN + BOX_PAD),
                    y: Pt(top - off - height),
                    width: Pt(width),
                    height: Pt(height),
                    mode: Some(PaintMode::Fill),
                    winding_order: None,
                },
                Rgb::new(0.945, 0.945, 0.945, None),
            ));
        }
        page.rects.push((
            Rect {
                x: Pt(MARGIN),
                y: Pt(top - block.height),
                width: Pt(CONTENT_W),
                height: Pt(block.height),
                mode: Some(PaintMode::Stroke),
                winding_order: None,
            },
            Rgb::new(0.6, 0.6, 0.6, None),
        ));
        for (face, size, dx, dy, text) in block.lines {
            page.runs.push(Run {
                face,
                size,
                x: MARGIN + dx,
                y: top - dy,
                text,
            });
        }
        y = top - block.height - 14.0;
        on_page += 1;
    }

    let mut doc = PdfDocument::new(&h.title);
    let regular = doc.add_font(&f.regular);
    let bold = doc.add_font(&f.bold);
    let total = pages.len();
    let pdf_pages = pages
        .into_iter()
        .enumerate()
        .map(|(n, mut page)| {
            let footer = format!(
                "Produced on {}. Stop an exercise that causes sharp pain, and tell your therapist. Page {} of {total}.",
                h.produced,
                n + 1
            );
            let mut fy = MARGIN;
            for l in f.wrap(Face::Regular, 8.5, CONTENT_W, &footer).into_iter().rev() {
                page.runs.push(Run {
                    face: Face::Regular,
                    size: 8.5,
                    x: MARGIN,
                    y: fy,
                    text: l,
                });
                fy += leading(8.5);
            }
            let mut page_ops = Vec::new();
            for p in std::mem::take(&mut page.pictures) {
                let (px_w, px_h) = (p.image.width as f32, p.image.height as f32);
                let id = doc.add_image(&p.image);
                page_ops.push(Op::UseXobject {
                    id,
                    transform: XObjectTransform {
                        translate_x: Some(Pt(p.x)),
                        translate_y: Some(Pt(p.y)),
                        // at 72 dpi a pixel is a point
                        dpi: Some(72.0),
                        scale_x: Some(p.w / px_w),
                        scale_y: Some(p.h / px_h),
                        ..Default::default()
                    },
                });
            }
            page_ops.extend(ops(page, &regular, &bold));
            PdfPage::new(Mm(210.0), Mm(297.0), page_ops)
        })
        .collect();
    doc.with_pages(pdf_pages)
        .save(&PdfSaveOptions::default(), &mut Vec::new())
}

fn ops(page: Sheet, regular: &FontId, bold: &FontId) -> Vec<Op> {
    let mut ops = Vec::with_capacity(page.rects.len() * 2 + page.runs.len() * 5);
    for (rect, colour) in page.rects {
        let colour = Color::Rgb(colour);
        if rect.mode == Some(PaintMode::Stroke) {
            ops.push(Op::SetOutlineColor { col: colour });
            ops.push(Op::SetOutlineThickness { pt: Pt(0.8) });
        } else {
            ops.push(Op::SetFillColor { col: colour });
        }
        ops.push(Op::DrawRectangle { rectangle: rect });
    }
    ops.push(Op::SetFillColor {
        col: Color::Rgb(Rgb::new(0.07, 0.07, 0.07, None)),
    });
    for run in page.runs {
        let font = match run.face {
            Face::Regular => regular.clone(),
            Face::Bold => bold.clone(),
        };
        ops.push(Op::StartTextSection);
        ops.push(Op::SetFont {
            font: PdfFontHandle::External(font),
            size: Pt(run.size),
        });
        ops.push(Op::SetTextCursor {
            pos: Point {
                x: Pt(run.x),
                y: Pt(run.y),
            },
        });
        ops.push(Op::ShowText {
            items: vec![TextItem::Text(run.text)],
        });
        ops.push(Op::EndTextSection);
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_to_the_width_and_keeps_every_word() {
        let f = faces();
        let text = "3 sets of 10 repetitions, hold 5 seconds, left side, twice a day, every day for 6 weeks.";
        let lines = f.wrap(Face::Regular, 11.0, 150.0, text);
        assert!(lines.len() > 2);
        for l in &lines {
            assert!(f.width(Face::Regular, 11.0, l) <= 150.0, "{l}");
        }
        assert_eq!(lines.join(" "), text);
        let long = "x".repeat(200);
        let cut = f.wrap(Face::Bold, 14.0, 100.0, &long);
        assert!(cut.len() > 1);
        assert_eq!(cut.concat(), long);
    }

    #[test]
    fn one_page_per_three_exercises_and_all_the_text() {
        let sheet = super::super::tests::sample();
        let doc = lopdf::Document::load_mem(&render_pdf(&sheet)).expect("a PDF document");
        let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
        assert_eq!(pages.len(), 2);
        let text = doc.extract_text(&pages).expect("text");
        for expected in [
            "Knee <phase 1>",
            "Patient: Sam O'Rivera",
            "Therapist: Jordan Lee",
            "Contact: 555-0100",
            "1. Exercise 0",
            "4. Exercise 3",
            "Breathe <slowly>.",
            "Page 2 of 2.",
            "Produced on 2026-11-27.",
        ] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
        let first = doc.extract_text(&[1]).expect("text");
        assert!(first.contains("3. Exercise 2") && !first.contains("4. Exercise 3"));
    }
}
