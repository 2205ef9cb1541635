//! JSON Merge Patch (RFC 7386): how a decision's `amend` changes an asset's recorded parameters.
//!
//! Written here (about twenty lines) rather than taken from a crate: the algorithm is the RFC's own
//! pseudo-code, and the table test below is the RFC's Appendix A.

use serde_json::{Map, Value};

/// Applies `patch` to `target` as RFC 7386 says: an object patch merges member by member, `null` removes a
/// member, and anything else (a string, a number, an array) replaces the target.
///
/// ```
/// use lightflow_remedy::lightflow::merge_patch;
/// use serde_json::json;
///
/// let mut params = json!({"input": {"urlPath": "https://example.com/in.mp4"}, "4k": true, "tags": ["a"]});
/// merge_patch(&mut params, &json!({"4k": null, "tags": ["b"], "perceptual-quality": {"h264": {"maxResolution": 1080}}}));
/// assert_eq!(params, json!({"input": {"urlPath": "https://example.com/in.mp4"}, "tags": ["b"],
///                           "perceptual-quality": {"h264": {"maxResolution": 1080}}}));
/// ```
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        merge_members(target, patch);
    }
}

/// Applies an object patch to an object: what a resubmission's `amend` does to the asset's parameters.
pub fn merge_members(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (name, value) in patch {
        if value.is_null() {
            target.remove(name);
        } else {
            merge_patch(target.entry(name.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// RFC 7386, Appendix A: (original, patch, result).
    #[test]
    fn the_rfc_examples() {
        let table = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": "b", "b": "c"}), json!({"a": null}), json!({"b": "c"})),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (json!({"a": {"b": "c"}}), json!({"a": {"b": "d", "c": null}}), json!({"a": {"b": "d"}})),
            (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (json!({"e": null}), json!({"a": 1}), json!({"e": null, "a": 1})),
            (json!([1, 2]), json!({"a": "b", "c": null}), json!({"a": "b"})),
            (json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
        ];
        for (original, patch, expected) in table {
            let mut target = original.clone();
            merge_patch(&mut target, &patch);
            assert_eq!(target, expected, "{original} + {patch}");
        }
    }

    #[test]
    fn an_amend_merges_into_the_parameters() {
        let mut params = json!({"input": {"urlPath": "u"}, "4k": true}).as_object().cloned().unwrap();
        merge_members(&mut params, json!({"4k": false, "input": {"extra": 1}}).as_object().unwrap());
        assert_eq!(Value::Object(params), json!({"input": {"urlPath": "u", "extra": 1}, "4k": false}));
    }
}
