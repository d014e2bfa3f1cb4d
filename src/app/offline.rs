//! The command line's tools beside the server: checking texts offline as msgSecCheck would
//! (`modgate check`), and asking a running gateway whether it is ready (`modgate healthcheck`).

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

use crate::api::wire::V2Body;
use crate::engine::{Engine, Matcher, Source};

/// How `modgate check` reads and reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Standard input holds JSON lines rather than one text per line.
    pub json: bool,
    /// Print each hit's explanation after the text's line.
    pub explain: bool,
}

/// What a run of `modgate check` found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub checked: usize,
    pub risky: usize,
    /// Lines that could not be read as a text.
    pub bad: usize,
}

impl Tally {
    /// The exit status: 2 when a line could not be read, else 1 when any text is risky, else 0.
    pub fn status(&self) -> u8 {
        if self.bad > 0 {
            2
        } else {
            u8::from(self.risky > 0)
        }
    }
}

/// The fields a JSON line may carry, checked together as one msgSecCheck request's.
const FIELDS: [&str; 4] = ["content", "title", "nickname", "signature"];

/// Checks each text of `texts`, printing one JSON object per text (`result` and `detail` as
/// msgSecCheck v2 answers them, with the deciding built-in word shown).
pub fn check_texts(
    engine: &Engine,
    custom: Option<&Matcher>,
    texts: &[String],
    options: CheckOptions,
    out: &mut impl Write,
) -> std::io::Result<Tally> {
    let mut tally = Tally::default();
    for text in texts {
        report(engine, custom, &[text], None, options, out, &mut tally)?;
    }
    Ok(tally)
}

/// Checks every line of `input` (a text, or with `options.json` a JSON string or an object of
/// [`FIELDS`] and an `id`), printing one JSON object per line with its `line` number (and `id`).
/// Lines that are not texts are reported on `err` and counted; empty lines are skipped.
pub fn check_lines(
    engine: &Engine,
    custom: Option<&Matcher>,
    input: impl BufRead,
    options: CheckOptions,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<Tally> {
    let mut tally = Tally::default();
    for (n, line) in input.lines().enumerate() {
        let n = n + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                writeln!(err, "line {n}: not UTF-8")?;
                tally.bad += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        if line.trim().is_empty() {
            continue;
        }
        if !options.json {
            report(
                engine,
                custom,
                &[&line],
                Some((n, None)),
                options,
                out,
                &mut tally,
            )?;
            continue;
        }
        match fields_of(&line) {
            Ok((fields, id)) => {
                let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
                report(
                    engine,
                    custom,
                    &fields,
                    Some((n, id)),
                    options,
                    out,
                    &mut tally,
                )?;
            }
            Err(why) => {
                writeln!(err, "line {n}: {why}")?;
                tally.bad += 1;
            }
        }
    }
    Ok(tally)
}

/// A JSON line's fields and id.
fn fields_of(line: &str) -> Result<(Vec<String>, Option<Value>), String> {
    match serde_json::from_str::<Value>(line).map_err(|e| format!("not JSON: {e}"))? {
        Value::String(s) => Ok((vec![s], None)),
        Value::Object(mut o) => {
            let id = o.remove("id");
            let mut fields = Vec::new();
            for name in FIELDS {
                match o.remove(name) {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) => fields.push(s),
                    Some(_) => return Err(format!("{name} is not a string")),
                }
            }
            if let Some(other) = o.keys().next() {
                return Err(format!(
                    "unknown field {other:?} (expected {}, id)",
                    FIELDS.join(", ")
                ));
            }
            if fields.is_empty() {
                return Err("no content (nor title, nickname, signature)".into());
            }
            Ok((fields, id))
        }
        _ => Err("expected a string or an object with content".into()),
    }
}

fn report(
    engine: &Engine,
    custom: Option<&Matcher>,
    fields: &[&str],
    line: Option<(usize, Option<Value>)>,
    options: CheckOptions,
    out: &mut impl Write,
    tally: &mut Tally,
) -> std::io::Result<()> {
    let verdict = engine.check_with(fields, custom);
    tally.checked += 1;
    tally.risky += usize::from(verdict.result.suggest == crate::engine::Suggest::Risky);
    // Offline and run by the operator: the deciding built-in word is shown.
    let body = V2Body::new("", &verdict, true);
    let mut object = serde_json::Map::new();
    if let Some((n, id)) = line {
        object.insert("line".into(), n.into());
        if let Some(id) = id {
            object.insert("id".into(), id);
        }
    }
    object.insert("result".into(), serde_json::to_value(&body.result)?);
    object.insert("detail".into(), serde_json::to_value(&body.detail)?);
    writeln!(out, "{}", Value::Object(object))?;
    if options.explain {
        for field in fields {
            out.write_all(explanation(engine, custom, field).as_bytes())?;
        }
    }
    Ok(())
}

/// `check --explain`: the normalized text, then one block per hit.
pub fn explanation(engine: &Engine, custom: Option<&Matcher>, text: &str) -> String {
    use std::fmt::Write;
    let why = engine.explain(text, custom);
    let mut out = String::new();
    let _ = writeln!(out, "normalized: {}", why.normalized);
    if why.hits.is_empty() {
        let _ = writeln!(out, "no hits");
    }
    for (n, hit) in why.hits.iter().enumerate() {
        let f = &hit.finding;
        let source = match f.source {
            Source::Builtin(_) => "lexicon",
            Source::Custom(_) => "custom table",
            Source::Detector(_) => "detector",
        };
        let chars = |to: usize| text[..to].chars().count();
        let _ = writeln!(
            out,
            "hit {}: {} ({source}; label {}, {} {})",
            n + 1,
            hit.word,
            f.label.code(),
            f.suggest.as_str(),
            f.score,
        );
        let _ = writeln!(
            out,
            "  input: {:?} at characters {}..{} (bytes {}..{})",
            &text[hit.input_start..hit.input_end],
            chars(hit.input_start),
            chars(hit.input_end),
            hit.input_start,
            hit.input_end,
        );
        let _ = writeln!(
            out,
            "  matched: {:?}",
            why.normalized
                .get(f.start as usize..f.end as usize)
                .unwrap_or("")
        );
        let steps: Vec<&str> = hit.steps.iter().map(|s| s.as_str()).collect();
        let steps = if steps.is_empty() {
            "none (as written)".to_owned()
        } else {
            steps.join(", ")
        };
        let _ = writeln!(out, "  steps: {steps}");
    }
    out
}

/// The address to reach a listener bound to `listen` from this machine: an unspecified address
/// (`0.0.0.0`, `::`) is reached on loopback.
pub fn local_address(listen: SocketAddr) -> SocketAddr {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// Asks the admin listener at `addr` for `/readyz`: `Ok` with its body when it answers 200, an
/// error saying what it answered (or why nothing was) otherwise.
pub fn ready(addr: &str, timeout: Duration) -> Result<String, String> {
    let target = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&target, timeout).map_err(|e| format!("{addr}: {e}"))?;
    let io = |e: std::io::Error| format!("{addr}: {e}");
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut response = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut response)
        .map_err(io)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or("");
    let code = status.split_whitespace().nth(1);
    let body = body.trim().to_owned();
    if code == Some("200") {
        Ok(body)
    } else if status.is_empty() {
        Err(format!("{addr}: no answer"))
    } else {
        Err(format!("{addr}: {status}: {}", body.replace('\n', "; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_name_their_fields() {
        assert_eq!(fields_of("\"text\"").unwrap().0, ["text"]);
        let (fields, id) =
            fields_of(r#"{"content": "a", "title": "b", "nickname": null, "id": 7}"#).unwrap();
        assert_eq!(fields, ["a", "b"]);
        assert_eq!(id, Some(Value::from(7)));
        for (line, why) in [
            ("{", "not JSON"),
            ("[1]", "expected a string or an object"),
            (r#"{"content": 1}"#, "content is not a string"),
            (r#"{"body": "x"}"#, "unknown field \"body\""),
            (r#"{"id": "x"}"#, "no content"),
        ] {
            let err = fields_of(line).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn the_status_says_risky_or_unreadable() {
        let t = |risky, bad| Tally {
            checked: 3,
            risky,
            bad,
        };
        assert_eq!(t(0, 0).status(), 0);
        assert_eq!(t(1, 0).status(), 1);
        assert_eq!(t(1, 1).status(), 2);
    }

    #[test]
    fn unspecified_listen_addresses_are_reached_on_loopback() {
        assert_eq!(
            local_address("0.0.0.0:9090".parse().unwrap()),
            "127.0.0.1:9090".parse().unwrap()
        );
        assert_eq!(
            local_address("[::]:9090".parse().unwrap()),
            "[::1]:9090".parse().unwrap()
        );
        assert_eq!(
            local_address("10.0.0.1:9090".parse().unwrap()),
            "10.0.0.1:9090".parse().unwrap()
        );
    }
}
