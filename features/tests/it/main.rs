//! The features crate's integration tests (one test binary per crate).

mod point_in_time;
