//! Feature views for Spine: entity keys, windowed aggregations, point-in-time-correct training sets and an
//! online snapshot, built on the engine's asset model. Landed so far: the point-in-time join
//! ([`point_in_time`]) and the `training_set` kind built on it ([`training_set`]); the `feature_view`
//! kind comes next (issue 29).

pub mod point_in_time;
pub mod training_set;

/// Adds this crate's kinds (`training_set`) to `registry`.
pub fn register(registry: &mut spine_engine::kinds::KindRegistry) {
    registry.register(std::sync::Arc::new(training_set::TrainingSetKind));
}
