//! The features crate's integration tests (one test binary per crate).

mod feature_view;
mod point_in_time;
