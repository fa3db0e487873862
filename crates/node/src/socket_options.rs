//! Named socket options (reactor_core::sys::sockopt): `sockets.setOption` / `sockets.getOption` on
//! a caller's fd, `setSocketOption` / `getSocketOption` on the core's duplicate by id, and the
//! core's table of options for the TypeScript layer's argument checks. Glue only: the names, kinds
//! and ranges are the core's.

use crate::error::{self, os_error};
use crate::numbers;
use crate::reactor::NativeReactor;
use napi::bindgen_prelude::Either3;
use napi_derive::napi;
use reactor_core::sys::sockopt::{self, Kind, SocketOption, Value};

// A value as JS gives and gets it is `Either3<bool, f64, String>` (a boolean, a number or a
// string, by the option's kind), spelled out in each signature: napi-rs writes the .d.ts from
// the signature's tokens and does not expand an alias.

/// One option of the core's table, as `sockets.socketOptions()` lists it.
#[napi(object, namespace = "sockets")]
pub struct SocketOptionSpec {
    /// The C name, e.g. 'SO_RCVBUF'.
    pub name: String,
    /// 'boolean', 'integer' or 'string'.
    pub kind: String,
    /// Integers: the smallest and largest value the option takes.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Strings: the most bytes a name may have, and whether '' is allowed (it clears the option).
    pub max_length: Option<u32>,
    pub may_be_empty: Option<bool>,
}

/// The core's table of named options, in its order.
#[napi(namespace = "sockets", catch_unwind)]
pub fn socket_options() -> Vec<SocketOptionSpec> {
    SocketOption::ALL
        .iter()
        .map(|option| {
            let mut spec = SocketOptionSpec {
                name: option.name().to_owned(),
                kind: String::new(),
                min: None,
                max: None,
                max_length: None,
                may_be_empty: None,
            };
            match option.kind() {
                Kind::Bool => spec.kind = "boolean".into(),
                Kind::Int { min, max } => {
                    spec.kind = "integer".into();
                    spec.min = Some(min as f64);
                    spec.max = Some(max as f64);
                }
                Kind::Name { max_len, clearable } => {
                    spec.kind = "string".into();
                    spec.max_length = Some(max_len as u32);
                    spec.may_be_empty = Some(clearable);
                }
            }
            spec
        })
        .collect()
}

/// Sets a named option on `fd` (the caller's; nothing is kept).
#[napi(namespace = "sockets", catch_unwind)]
pub fn set_option(fd: f64, name: String, value: Either3<bool, f64, String>) -> napi::Result<()> {
    let fd = numbers::fd(fd, "setsockopt")?;
    let option = option_named(&name)?;
    let value = value_of(value)?;
    sockopt::set_fd(fd, option, &value).map_err(|e| os_error(e, "setsockopt"))
}

/// What the kernel reports for a named option of `fd`.
#[napi(namespace = "sockets", catch_unwind)]
pub fn get_option(fd: f64, name: String) -> napi::Result<Either3<bool, f64, String>> {
    let fd = numbers::fd(fd, "getsockopt")?;
    let option = option_named(&name)?;
    sockopt::get_fd(fd, option).map(js_value).map_err(|e| os_error(e, "getsockopt"))
}

#[napi]
impl NativeReactor {
    /// Sets a named option on the core's duplicate behind `id` (EBADF once it is gone).
    #[napi(catch_unwind)]
    pub fn set_socket_option(&self, id: u32, name: String, value: Either3<bool, f64, String>) -> napi::Result<()> {
        let option = option_named(&name)?;
        let value = value_of(value)?;
        self.core()?.set_socket_option(id, option, &value).map_err(|e| os_error(e, "setsockopt"))
    }

    /// What the kernel reports for a named option of the socket behind `id`.
    #[napi(catch_unwind)]
    pub fn get_socket_option(&self, id: u32, name: String) -> napi::Result<Either3<bool, f64, String>> {
        let option = option_named(&name)?;
        self.core()?.socket_option(id, option).map(js_value).map_err(|e| os_error(e, "getsockopt"))
    }
}

fn option_named(name: &str) -> napi::Result<SocketOption> {
    SocketOption::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = SocketOption::ALL.iter().map(|o| o.name()).collect();
        error::type_error(
            "ERR_INVALID_ARG_VALUE",
            &format!("unknown socket option {name:?}; the known ones are {}", known.join(", ")),
        )
    })
}

/// Numbers become exact integers here; whether the option takes one, and in what range, is the
/// core's check (EINVAL).
fn value_of(value: Either3<bool, f64, String>) -> napi::Result<Value> {
    Ok(match value {
        Either3::A(on) => Value::Bool(on),
        Either3::B(n) => Value::Int(numbers::option_integer(n, "value")?),
        Either3::C(name) => Value::Name(name),
    })
}

fn js_value(value: Value) -> Either3<bool, f64, String> {
    match value {
        Value::Bool(on) => Either3::A(on),
        // Every integer the kernel reports fits a double exactly (at most 2^32).
        Value::Int(n) => Either3::B(n as f64),
        Value::Name(name) => Either3::C(name),
    }
}
