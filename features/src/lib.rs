//! Feature views for Spine: entity keys, windowed aggregations, point-in-time-correct training sets and an
//! online snapshot, built on the engine's asset model. Landed so far: the point-in-time join
//! ([`point_in_time`]), the `training_set` kind built on it ([`training_set`]) and the
//! `feature_view` kind ([`feature_view`]), and the `online_snapshot` kind serving a view's newest
//! values from Redis ([`online`]).

pub mod asof;
pub mod feature_view;
pub mod online;
pub mod point_in_time;
pub mod training_set;

/// Adds this crate's kinds (`feature_view`, `online_snapshot`, `training_set`) to `registry`.
pub fn register(registry: &mut spine_engine::kinds::KindRegistry) {
    registry.register(std::sync::Arc::new(feature_view::FeatureViewKind));
    registry.register(std::sync::Arc::new(online::OnlineSnapshotKind));
    registry.register(std::sync::Arc::new(training_set::TrainingSetKind));
}
