//! Feature views for Spine: entity keys, windowed aggregations, point-in-time-correct training sets and an
//! online snapshot, built on the engine's asset model. Landed so far: the point-in-time join
//! ([`point_in_time`]) that training sets are built on; the `feature_view` and `training_set` kinds come
//! next (issue 29).

pub mod point_in_time;
