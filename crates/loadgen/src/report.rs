//! The one-line JSON result, written by hand (no serde: the shape is fixed and flat).

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub workload: &'static str,
    pub conns: usize,
    pub size: usize,
    /// Length of the measured window actually run (the requested duration unless the
    /// run ended early).
    pub seconds: f64,
    pub ops: u64,
    pub bytes: u64,
    pub rate: f64,
    pub unit: &'static str,
    pub p50_us: Option<u32>,
    pub p99_us: Option<u32>,
    pub errors: u64,
    pub lost: u64,
    /// The load generator's CPU (user + system) over the measured window, in seconds
    /// and as a share of one core; `None` if the window was never reached.
    pub cpu_s: Option<f64>,
    pub cpu_share: Option<f64>,
    /// Why the run is not trustworthy as a whole (could not start, all connections
    /// failed, echoes still missing at the hard deadline); `null` for a clean run.
    pub error: Option<String>,
}

impl Report {
    /// Clean means: no errors of any kind and at least one verified operation.
    pub fn is_clean(&self) -> bool {
        self.error.is_none() && self.errors == 0 && self.ops > 0
    }

    pub fn to_json(&self) -> String {
        let opt = |v: Option<u32>| v.map_or("null".to_string(), |v| v.to_string());
        let opt_f = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{:.3}", finite(v)));
        let mut s = String::with_capacity(256);
        let _ = write!(
            s,
            "{{\"workload\":\"{}\",\"conns\":{},\"size\":{},\"seconds\":{:.3},\"ops\":{},\"bytes\":{},\
             \"rate\":{:.1},\"unit\":\"{}\",\"p50_us\":{},\"p99_us\":{},\"errors\":{},\"lost\":{},\"cpu_s\":{},\"cpu_share\":{},\"error\":",
            self.workload,
            self.conns,
            self.size,
            finite(self.seconds),
            self.ops,
            self.bytes,
            finite(self.rate),
            self.unit,
            opt(self.p50_us),
            opt(self.p99_us),
            self.errors,
            self.lost,
            opt_f(self.cpu_s),
            opt_f(self.cpu_share),
        );
        match &self.error {
            None => s.push_str("null"),
            Some(e) => push_json_string(&mut s, e),
        }
        s.push('}');
        s
    }
}

/// JSON has no NaN/inf; a zero-length window must still print valid JSON.
fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

fn push_json_string(s: &mut String, text: &str) {
    s.push('"');
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let mut r = Report {
            workload: "stream",
            conns: 16,
            size: 16384,
            seconds: 3.0,
            ops: 10,
            bytes: 163840,
            rate: 0.0546133,
            unit: "MB/s",
            p50_us: None,
            p99_us: None,
            errors: 0,
            lost: 0,
            cpu_s: None,
            cpu_share: None,
            error: None,
        };
        assert_eq!(
            r.to_json(),
            "{\"workload\":\"stream\",\"conns\":16,\"size\":16384,\"seconds\":3.000,\"ops\":10,\
             \"bytes\":163840,\"rate\":0.1,\"unit\":\"MB/s\",\"p50_us\":null,\"p99_us\":null,\
             \"errors\":0,\"lost\":0,\"cpu_s\":null,\"cpu_share\":null,\"error\":null}"
        );
        r.p50_us = Some(12);
        r.p99_us = Some(40);
        r.error = Some("say \"hi\"\n\\".into());
        r.rate = f64::NAN;
        r.cpu_s = Some(0.5);
        r.cpu_share = Some(0.4996);
        let j = r.to_json();
        assert!(j.contains("\"cpu_s\":0.500,\"cpu_share\":0.500,"), "{j}");
        assert!(j.contains("\"p50_us\":12,\"p99_us\":40"));
        assert!(j.contains("\"rate\":0.0,"));
        assert!(j.ends_with("\"error\":\"say \\\"hi\\\"\\n\\\\\"}"));
    }
}
