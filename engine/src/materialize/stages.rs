//! Stages of a step's attempt, each alone (issue 28 turns the whole attempt into such a pipeline):
//! the checks a kind reported, and the output policy of a declared schema.

use super::*;

/// Stage: the checks a kind reported with its output, each recorded as an event; a failed `error`
/// check fails the step before anything is committed.
pub(super) async fn kind_checks(
    events: &crate::kinds::EventSink,
    checks: &[crate::kinds::CheckResult],
) -> Result<(), StepError> {
    for c in checks {
        let msg = format!(
            "check {} {}{}",
            c.name,
            if c.passed { "passed" } else { "failed" },
            c.message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
        let event = Event::CheckResult {
            name: c.name.clone(),
            passed: c.passed,
            severity: c.severity,
        };
        events.emit(event, &msg).await;
    }
    match checks
        .iter()
        .find(|c| !c.passed && c.severity == CheckSeverity::Error)
    {
        Some(c) => Err(StepError::permanent(format!(
            "check '{}' failed{}; nothing was committed",
            c.name,
            c.message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ))),
        None => Ok(()),
    }
}

/// Stage (output policy): an asset that declares its schema (`schema:`) must produce exactly it
/// (E0251, permanent, nothing committed).
pub(super) fn declared_schema_holds(
    spec: &crate::project::AssetSpec,
    schema: &arrow::datatypes::Schema,
) -> Result<(), StepError> {
    match spec
        .declared_schema
        .as_ref()
        .and_then(|declared| crate::project::declared_schema::mismatch(declared, schema))
    {
        Some(m) => Err(StepError::permanent(format!(
            "E0251 the output does not match the declared schema: {m}; nothing was \
             committed — fix the {} asset or its `schema:`",
            spec.kind
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod stage_tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn the_output_policy_holds_an_asset_to_its_declared_schema() {
        let mut spec = crate::project::AssetSpec::sql("a", "SELECT 1 AS n").unwrap();
        let n = Schema::new(vec![Field::new("n", DataType::Int64, true)]);
        let s = Schema::new(vec![Field::new("n", DataType::Utf8, true)]);
        assert!(declared_schema_holds(&spec, &s).is_ok(), "nothing declared");
        spec.declared_schema = Some(Arc::new(n.clone()));
        assert!(declared_schema_holds(&spec, &n).is_ok());
        let e = declared_schema_holds(&spec, &s).unwrap_err();
        assert_eq!(e.class, crate::kinds::FailureClass::Permanent);
        assert!(e.message.contains("E0251"), "{}", e.message);
    }
}
