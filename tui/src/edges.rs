//! Edges between two adjacent lineage columns, drawn with box-drawing characters in the gap between
//! them. Each cell of the gap collects which sides its segments leave by (left, right, up, down);
//! where edges meet, the bits combine into the junction (`┬`, `┤`, `┼`, …), so overlapping edges
//! merge instead of overwriting each other.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};

const L: u8 = 1;
const R: u8 = 2;
const U: u8 = 4;
const D: u8 = 8;

/// The gap between two columns, `width` cells wide, `height` rows high.
pub(crate) struct Gap {
    width: usize,
    height: usize,
    cells: Vec<u8>,
    lit: Vec<bool>,
    arrows: Vec<bool>,
}

impl Gap {
    pub(crate) fn new(width: u16, height: u16) -> Self {
        let (width, height) = (width as usize, height as usize);
        Gap {
            width,
            height,
            cells: vec![0; width * height],
            lit: vec![false; width * height],
            arrows: vec![false; width * height],
        }
    }

    fn mark(&mut self, x: usize, y: usize, bits: u8, lit: bool) {
        if x < self.width && y < self.height {
            let i = y * self.width + x;
            self.cells[i] |= bits;
            self.lit[i] |= lit;
        }
    }

    /// An edge from row `from` of the left column to row `to` of the right one, turning at column
    /// `turn` of the gap; `lit` draws it highlighted.
    pub(crate) fn edge(&mut self, from: usize, to: usize, turn: usize, lit: bool) {
        if self.width == 0 {
            return;
        }
        let last = self.width - 1;
        let turn = turn.min(last);
        for x in 0..=turn {
            let mut bits = L;
            if x < turn {
                bits |= R;
            }
            self.mark(x, from, bits, lit);
        }
        for x in turn..=last {
            let mut bits = R;
            if x > turn {
                bits |= L;
            }
            self.mark(x, to, bits, lit);
        }
        let (a, b) = (from.min(to), from.max(to));
        for y in a..=b {
            let mut bits = 0;
            if y > a {
                bits |= U;
            }
            if y < b {
                bits |= D;
            }
            self.mark(turn, y, bits, lit);
        }
        if to < self.height {
            self.arrows[to * self.width + last] = true;
        }
    }

    /// Draws the gap with its top-left corner at `at`.
    pub(crate) fn render(&self, at: Rect, buf: &mut Buffer) {
        let dim = Style::default().fg(Color::DarkGray);
        let lit = Style::default()
            .fg(Color::Cyan)
            .add_modifier(Modifier::BOLD);
        for y in 0..self.height.min(at.height as usize) {
            for x in 0..self.width.min(at.width as usize) {
                let i = y * self.width + x;
                let c = if self.arrows[i] {
                    '▶'
                } else {
                    match glyph(self.cells[i]) {
                        Some(c) => c,
                        None => continue,
                    }
                };
                let style = if self.lit[i] { lit } else { dim };
                if let Some(cell) = buf.cell_mut((at.x + x as u16, at.y + y as u16)) {
                    cell.set_char(c).set_style(style);
                }
            }
        }
    }
}

fn glyph(bits: u8) -> Option<char> {
    Some(match bits {
        0 => return None,
        b if b == L | R || b == L || b == R => '─',
        b if b == U | D || b == U || b == D => '│',
        b if b == R | D => '┌',
        b if b == L | D => '┐',
        b if b == R | U => '└',
        b if b == L | U => '┘',
        b if b == L | R | D => '┬',
        b if b == L | R | U => '┴',
        b if b == U | D | R => '├',
        b if b == U | D | L => '┤',
        _ => '┼',
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(g: &Gap) -> Vec<String> {
        let mut buf = Buffer::empty(Rect::new(0, 0, g.width as u16, g.height as u16));
        g.render(buf.area, &mut buf);
        (0..g.height)
            .map(|y| {
                (0..g.width)
                    .map(|x| buf[(x as u16, y as u16)].symbol().to_string())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn edges_turn_and_merge_into_junctions() {
        let mut g = Gap::new(5, 5);
        // One source row feeding two targets: a fork.
        g.edge(0, 0, 2, false);
        g.edge(0, 3, 2, true);
        assert_eq!(text(&g), ["──┬─▶", "  │  ", "  │  ", "  └─▶", "     "]);
        // A second source joining the lower target from below.
        g.edge(4, 3, 2, false);
        assert_eq!(text(&g), ["──┬─▶", "  │  ", "  │  ", "  ├─▶", "──┘  "]);
        // Highlighted cells are the lit edge's.
        assert!(g.lit[3 * 5 + 3] && !g.lit[4 * 5]);
    }
}
