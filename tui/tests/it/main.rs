//! Every test of the terminal UI in one test binary. `support` draws the fixture and compares screens with `tests/snapshots/`.

mod support;

mod actions;
mod data;
mod drill;
mod modules;
mod render;
