//! Conversion between JSON field values and Rhai values.
//!
//! Written by hand rather than through Rhai's serde support so that a value a field cannot
//! hold (a function pointer, NaN, a timestamp) fails with a message that names its place.

use rhai::{Array, Dynamic, ImmutableString, Map};
use serde_json::{Number, Value};

/// Maximum nesting of arrays and maps converted in either direction. Conversion recurses,
/// so a bound keeps a deeply nested value built by a script from overflowing the stack.
pub(crate) const MAX_NESTING: usize = 32;

/// Converts a JSON value into a Rhai value. Integers that do not fit `i64` become floats.
pub(crate) fn json_to_dynamic(value: &Value) -> Result<Dynamic, String> {
    json_to_dynamic_at(value, 0)
}

fn json_to_dynamic_at(value: &Value, depth: usize) -> Result<Dynamic, String> {
    if depth > MAX_NESTING {
        return Err(format!(
            "the value nests arrays or maps deeper than {MAX_NESTING} levels"
        ));
    }
    let converted = match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(flag) => Dynamic::from_bool(*flag),
        Value::Number(number) => number_to_dynamic(number),
        Value::String(text) => Dynamic::from(ImmutableString::from(text.as_str())),
        Value::Array(items) => {
            let mut array = Array::with_capacity(items.len());
            for item in items {
                array.push(json_to_dynamic_at(item, depth + 1)?);
            }
            Dynamic::from_array(array)
        }
        Value::Object(object) => {
            let mut map = Map::new();
            for (key, item) in object {
                map.insert(key.as_str().into(), json_to_dynamic_at(item, depth + 1)?);
            }
            Dynamic::from_map(map)
        }
    };
    Ok(converted)
}

fn number_to_dynamic(number: &Number) -> Dynamic {
    match number.as_i64() {
        Some(integer) => Dynamic::from_int(integer),
        // u64 above i64::MAX, or a fraction: JSON numbers always fit f64, perhaps rounded.
        None => Dynamic::from_float(number.as_f64().unwrap_or(f64::NAN)),
    }
}

/// Converts a Rhai value into JSON. Fails on values JSON cannot hold: non-finite floats,
/// function pointers, timestamps, blobs and custom types.
pub(crate) fn dynamic_to_json(value: &Dynamic) -> Result<Value, String> {
    dynamic_to_json_at(value, 0)
}

fn dynamic_to_json_at(value: &Dynamic, depth: usize) -> Result<Value, String> {
    if depth > MAX_NESTING {
        return Err(format!(
            "the value nests arrays or maps deeper than {MAX_NESTING} levels"
        ));
    }
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(flag) = value.as_bool() {
        return Ok(Value::Bool(flag));
    }
    if let Ok(integer) = value.as_int() {
        return Ok(Value::from(integer));
    }
    if let Ok(float) = value.as_float() {
        return Number::from_f64(float).map(Value::Number).ok_or_else(|| {
            format!("the number {float} cannot be stored because it is not finite")
        });
    }
    if let Ok(character) = value.as_char() {
        return Ok(Value::String(character.to_string()));
    }
    if let Ok(text) = value.as_immutable_string_ref() {
        return Ok(Value::String(text.to_string()));
    }
    if let Some(array) = value.read_lock::<Array>() {
        let mut items = Vec::with_capacity(array.len());
        for item in array.iter() {
            items.push(dynamic_to_json_at(item, depth + 1)?);
        }
        return Ok(Value::Array(items));
    }
    if let Some(map) = value.read_lock::<Map>() {
        let mut object = serde_json::Map::new();
        for (key, item) in map.iter() {
            object.insert(key.to_string(), dynamic_to_json_at(item, depth + 1)?);
        }
        return Ok(Value::Object(object));
    }
    Err(format!(
        "a value of type `{}` cannot be stored: use a string, number, bool, array, map or ()",
        value.type_name()
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_round_trip() {
        let value = json!({
            "text": "disk full",
            "count": 3,
            "ratio": 0.5,
            "flag": true,
            "nothing": null,
            "list": [1, "two", [3]],
            "nested": { "ci": "srv-01" }
        });
        let dynamic = json_to_dynamic(&value).unwrap();
        assert_eq!(dynamic_to_json(&dynamic).unwrap(), value);
    }

    #[test]
    fn large_unsigned_becomes_float() {
        let dynamic = json_to_dynamic(&json!(u64::MAX)).unwrap();
        assert!(dynamic.as_float().is_ok());
    }

    #[test]
    fn non_finite_float_rejected() {
        let error = dynamic_to_json(&Dynamic::from_float(f64::NAN)).unwrap_err();
        assert!(error.contains("not finite"), "{error}");
    }

    #[test]
    fn char_becomes_string() {
        assert_eq!(
            dynamic_to_json(&Dynamic::from_char('x')).unwrap(),
            json!("x")
        );
    }

    #[test]
    fn function_pointer_rejected() {
        let pointer = rhai::FnPtr::new("f").unwrap();
        let error = dynamic_to_json(&Dynamic::from(pointer)).unwrap_err();
        assert!(error.contains("Fn"), "{error}");
    }

    #[test]
    fn deep_nesting_rejected() {
        let mut value = Dynamic::from_int(1);
        for _ in 0..=MAX_NESTING {
            value = Dynamic::from_array(vec![value]);
        }
        let error = dynamic_to_json(&value).unwrap_err();
        assert!(error.contains("deeper than"), "{error}");
    }
}
