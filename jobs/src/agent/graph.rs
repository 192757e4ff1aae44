//! A graph's edges: conditions (`field op literal`) and where a case goes after a node — the first
//! branch whose condition holds over the case's fields (its state over its row).

use serde_json::{Map, Value};

/// A condition: `field op literal`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The state field or case column.
    pub field: String,
    /// `==`, `!=`, `<`, `<=`, `>`, `>=`, `contains`.
    pub op: String,
    /// The literal, as JSON.
    pub value: serde_json::Value,
}

/// Where a node goes next.
#[derive(Debug, Clone)]
pub enum Next {
    /// One node, or the end (`None`).
    To(Option<String>),
    /// The first branch whose condition holds (none: the last branch has no condition, or the end).
    Branches(Vec<(Option<Condition>, Option<String>)>),
}

/// A condition `text`, e.g. `confidence < 0.5`, `category == 'billing'`, `tags contains "vip"`.
pub fn condition(text: &str) -> Result<Condition, String> {
    let t = text.trim();
    let ops = ["==", "!=", "<=", ">=", "<", ">", " contains "];
    let (i, op) = ops
        .iter()
        .filter_map(|op| t.find(op).map(|i| (i, *op)))
        .min_by_key(|(i, op)| (*i, std::cmp::Reverse(op.len())))
        .ok_or_else(|| {
            format!("'{text}' is not `field op value` (op: == != < <= > >= contains)")
        })?;
    let field = t[..i].trim();
    let lit = t[i + op.len()..].trim();
    if field.is_empty() || !field.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Err(format!("'{text}': '{field}' is not a field name"));
    }
    let value = if let Some(s) = lit
        .strip_prefix('\'')
        .and_then(|l| l.strip_suffix('\''))
        .or_else(|| lit.strip_prefix('"').and_then(|l| l.strip_suffix('"')))
    {
        serde_json::Value::String(s.to_string())
    } else {
        serde_json::from_str(lit).map_err(|_| {
            format!("'{text}': '{lit}' is not a literal (a number, 'text', true, false, null)")
        })?
    };
    Ok(Condition {
        field: field.to_string(),
        op: op.trim().to_string(),
        value,
    })
}

/// A field's value: the state's, else the case's column.
fn field<'a>(
    state: &'a Map<String, Value>,
    case: &'a Map<String, Value>,
    name: &str,
) -> Option<&'a Value> {
    state.get(name).or_else(|| case.get(name))
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Whether `c` holds for the case.
pub fn holds(c: &Condition, state: &Map<String, Value>, case: &Map<String, Value>) -> bool {
    let v = field(state, case, &c.field).unwrap_or(&Value::Null);
    if v.is_null() || c.value.is_null() {
        return match c.op.as_str() {
            "==" => v.is_null() && c.value.is_null(),
            "!=" => v.is_null() != c.value.is_null(),
            _ => false,
        };
    }
    let text = |x: &Value| match x {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let ord = match (number(v), number(&c.value)) {
        (Some(a), Some(b)) => a.partial_cmp(&b),
        _ => Some(text(v).cmp(&text(&c.value))),
    };
    use std::cmp::Ordering::*;
    match c.op.as_str() {
        "==" => ord == Some(Equal),
        "!=" => ord != Some(Equal),
        "<" => ord == Some(Less),
        "<=" => matches!(ord, Some(Less | Equal)),
        ">" => ord == Some(Greater),
        ">=" => matches!(ord, Some(Greater | Equal)),
        "contains" => match v {
            Value::Array(items) => items.iter().any(|i| text(i) == text(&c.value)),
            other => text(other).contains(&text(&c.value)),
        },
        _ => false,
    }
}

/// Where a case goes after `next`.
pub fn follow(
    next: &Next,
    state: &Map<String, Value>,
    case: &Map<String, Value>,
) -> Option<String> {
    match next {
        Next::To(to) => to.clone(),
        Next::Branches(bs) => bs
            .iter()
            .find(|(c, _)| c.as_ref().is_none_or(|c| holds(c, state, case)))
            .and_then(|(_, to)| to.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_read_field_op_literal() {
        let c = condition("confidence < 0.5").unwrap();
        assert_eq!((c.field.as_str(), c.op.as_str()), ("confidence", "<"));
        assert_eq!(c.value, json!(0.5));
        let c = condition("category == 'billing'").unwrap();
        assert_eq!((c.op.as_str(), c.value.clone()), ("==", json!("billing")));
        assert_eq!(condition("n >= 3").unwrap().op, ">=");
        assert_eq!(condition("ok != true").unwrap().value, json!(true));
        assert_eq!(condition("tags contains \"vip\"").unwrap().op, "contains");
        assert!(condition("confidence").is_err());
        assert!(condition("a b < 1").is_err());
        assert!(condition("x == billing").is_err());
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn conditions_compare_numbers_as_numbers_and_text_as_text() {
        let state =
            obj(json!({"confidence": 0.3, "category": "billing", "tags": ["vip"], "n": null}));
        let case = obj(json!({"priority": "9", "category": "ignored"}));
        let t = |s: &str| holds(&condition(s).unwrap(), &state, &case);
        assert!(t("confidence < 0.5"));
        assert!(!t("confidence >= 0.5"));
        assert!(
            t("category == 'billing'"),
            "the state's field comes before the case's column"
        );
        assert!(
            !t("priority > 10") && t("priority == 9"),
            "a numeric column compares as a number"
        );
        assert!(t("tags contains 'vip'"));
        assert!(t("n == null") && !t("n < 1") && !t("missing > 0"));
    }

    #[test]
    fn branches_take_the_first_that_holds() {
        let next = Next::Branches(vec![
            (
                Some(condition("score < 0.5").unwrap()),
                Some("review".into()),
            ),
            (None, None),
        ]);
        let case = Map::new();
        assert_eq!(
            follow(&next, &obj(json!({"score": 0.2})), &case),
            Some("review".into())
        );
        assert_eq!(follow(&next, &obj(json!({"score": 0.9})), &case), None);
    }
}
