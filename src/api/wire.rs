//! Wire types: liberal request parsing and exact response shapes.
//!
//! Real SDKs are sloppy, so request fields are read leniently: a number may arrive as a string
//! (`"version": "2"`), and an optional field may be absent, `null` or `""` (all mean absent).
//! A field of the wrong JSON type is not a parse failure here: it becomes a `Wrong` marker, so
//! validation can answer in the SPEC's order with an errmsg naming the field, and a v1 request is
//! not refused over a field it never reads. Values are never echoed back.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::engine::{DetailItem, Verdict};

/// A string field, read leniently.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum Str<'a> {
    #[default]
    Absent,
    Value(Cow<'a, str>),
    /// Present with a JSON type other than string.
    Wrong,
}

/// An integer field, read leniently.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Int {
    #[default]
    Absent,
    Value(i64),
    /// A string or number that is not an integer (`"abc"`, `1.5`).
    NotInteger,
    /// Present with a JSON type that cannot hold a number (object, array, bool).
    Wrong,
}

/// A boolean field, read leniently: `true`, `"true"`, `1`, `"1"` and their opposites.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Bool {
    #[default]
    Absent,
    Value(bool),
    Wrong,
}

impl<'a> Str<'a> {
    pub fn value(&self) -> Option<&str> {
        match self {
            Str::Value(v) => Some(v),
            _ => None,
        }
    }
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Implements the visitor methods that turn "some other JSON type" into `Wrong`.
macro_rules! wrong_for {
    ($wrong:expr; $($method:ident($ty:ty)),*) => {
        $(fn $method<E: de::Error>(self, _: $ty) -> Result<Self::Value, E> { Ok($wrong) })*
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            drain_seq(seq)?;
            Ok($wrong)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            drain_map(map)?;
            Ok($wrong)
        }
    };
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(if v.is_empty() {
                    Str::Absent
                } else {
                    Str::Value(Cow::Borrowed(v))
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(if v.is_empty() {
                    Str::Absent
                } else {
                    Str::Value(Cow::Owned(v.to_owned()))
                })
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'de>, E> {
                Ok(if v.is_empty() {
                    Str::Absent
                } else {
                    Str::Value(Cow::Owned(v))
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<Str<'de>, E> {
                Ok(Str::Absent)
            }
            fn visit_none<E: de::Error>(self) -> Result<Str<'de>, E> {
                Ok(Str::Absent)
            }
            wrong_for!(Str::Wrong; visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64));
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int::Value(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                Ok(i64::try_from(v).map_or(Int::NotInteger, Int::Value))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Int, E> {
                // 2.0 is an integer written sloppily; 2.5 is not.
                Ok(if v.fract() == 0.0 && v.abs() < 9.0e15 {
                    Int::Value(v as i64)
                } else {
                    Int::NotInteger
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Int, E> {
                let v = v.trim();
                Ok(if v.is_empty() {
                    Int::Absent
                } else {
                    v.parse().map_or(Int::NotInteger, Int::Value)
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<Int, E> {
                Ok(Int::Absent)
            }
            fn visit_none<E: de::Error>(self) -> Result<Int, E> {
                Ok(Int::Absent)
            }
            wrong_for!(Int::Wrong; visit_bool(bool));
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Bool;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Bool, E> {
                Ok(Bool::Value(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bool, E> {
                Ok(match v {
                    0 => Bool::Value(false),
                    1 => Bool::Value(true),
                    _ => Bool::Wrong,
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bool, E> {
                Ok(match v {
                    0 => Bool::Value(false),
                    1 => Bool::Value(true),
                    _ => Bool::Wrong,
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bool, E> {
                Ok(match v.trim() {
                    "" => Bool::Absent,
                    "true" | "1" => Bool::Value(true),
                    "false" | "0" => Bool::Value(false),
                    _ => Bool::Wrong,
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<Bool, E> {
                Ok(Bool::Absent)
            }
            fn visit_none<E: de::Error>(self) -> Result<Bool, E> {
                Ok(Bool::Absent)
            }
            wrong_for!(Bool::Wrong; visit_f64(f64));
        }
        d.deserialize_any(V)
    }
}

/// A list of strings, read leniently: each item is a [`Str`], so a bad item is reported on its own.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum List<'a> {
    #[default]
    Absent,
    Items(Vec<Str<'a>>),
    /// Present but not an array.
    Wrong,
}

impl<'de: 'a, 'a> Deserialize<'de> for List<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = List<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<'de>, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(item) = seq.next_element::<Str<'de>>()? {
                    items.push(item);
                }
                Ok(List::Items(items))
            }
            fn visit_unit<E: de::Error>(self) -> Result<List<'de>, E> {
                Ok(List::Absent)
            }
            fn visit_none<E: de::Error>(self) -> Result<List<'de>, E> {
                Ok(List::Absent)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<List<'de>, A::Error> {
                drain_map(map)?;
                Ok(List::Wrong)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<List<'de>, E> {
                Ok(List::Wrong)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<List<'de>, E> {
                Ok(List::Wrong)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<List<'de>, E> {
                Ok(List::Wrong)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<List<'de>, E> {
                Ok(List::Wrong)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<List<'de>, E> {
                Ok(List::Wrong)
            }
        }
        d.deserialize_any(V)
    }
}

/// `POST /wxa/visit/report` body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct VisitReportBody<'a> {
    #[serde(borrow)]
    pub openid: Str<'a>,
    #[serde(borrow)]
    pub openids: List<'a>,
}

/// `POST /cgi-bin/openapi/quota/get` body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct QuotaGetBody<'a> {
    #[serde(borrow)]
    pub cgi_path: Str<'a>,
}

/// `POST /cgi-bin/clear_quota` and `/cgi-bin/clear_quota/v2` bodies.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClearQuotaBody<'a> {
    #[serde(borrow)]
    pub appid: Str<'a>,
    #[serde(borrow)]
    pub appsecret: Str<'a>,
}

/// `POST /wxa/msg_sec_check` body, v1 or v2.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MsgSecCheckBody<'a> {
    #[serde(borrow)]
    pub content: Str<'a>,
    pub version: Int,
    pub scene: Int,
    #[serde(borrow)]
    pub openid: Str<'a>,
    #[serde(borrow)]
    pub title: Str<'a>,
    #[serde(borrow)]
    pub nickname: Str<'a>,
    #[serde(borrow)]
    pub signature: Str<'a>,
}

/// `POST /wxa/media_check_async` body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MediaCheckBody<'a> {
    #[serde(borrow)]
    pub media_url: Str<'a>,
    pub media_type: Int,
    pub version: Int,
    pub scene: Int,
    #[serde(borrow)]
    pub openid: Str<'a>,
}

/// `POST /wxa/media_check_async/result` body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MediaResultBody<'a> {
    #[serde(borrow)]
    pub trace_id: Str<'a>,
}

/// `POST /wxa/media_check_async` success.
#[derive(Debug, Serialize)]
pub struct TraceReply<'a> {
    pub errcode: i32,
    pub errmsg: &'static str,
    pub trace_id: &'a str,
}

/// `POST /wxa/media_check_async/result` success: the job's state and, once analysed, the
/// verdict its push carries.
#[derive(Debug, Serialize)]
pub struct MediaResultReply<'a> {
    pub errcode: i32,
    pub errmsg: &'static str,
    pub trace_id: &'a str,
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<&'a crate::media::verdict::MediaVerdict>,
}

/// `POST /cgi-bin/stable_token` body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StableTokenBody<'a> {
    #[serde(borrow)]
    pub grant_type: Str<'a>,
    #[serde(borrow)]
    pub appid: Str<'a>,
    #[serde(borrow)]
    pub secret: Str<'a>,
    pub force_refresh: Bool,
}

/// Why a body could not be read as a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    Empty,
    NotUtf8,
    /// Syntax error at (line, column).
    Syntax(usize, usize),
    NotObject,
    /// The same field twice.
    Duplicate,
}

impl BodyError {
    pub fn describe(&self) -> String {
        match self {
            BodyError::Empty => "empty post data".into(),
            BodyError::NotUtf8 => "body is not valid UTF-8".into(),
            BodyError::Syntax(l, c) => format!("body is not valid JSON (line {l}, column {c})"),
            BodyError::NotObject => "body must be a JSON object".into(),
            BodyError::Duplicate => "body has a duplicate field".into(),
        }
    }
}

/// Parses a JSON object body into `T`.
pub fn parse_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Empty);
    }
    // SIMD validation: Chinese text is three bytes a character, which std checks one by one.
    let text = simdutf8::basic::from_utf8(body).map_err(|_| BodyError::NotUtf8)?;
    // Derived structs would also accept a JSON array (fields by position): only objects count.
    if !text.trim_start().starts_with('{') {
        return match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => Err(BodyError::NotObject),
            Err(e) => Err(BodyError::Syntax(e.line(), e.column())),
        };
    }
    serde_json::from_str(text).map_err(|e| match e.classify() {
        // Our fields never fail on type (see `Str`/`Int`), so a data error inside an object is a
        // duplicate key.
        serde_json::error::Category::Data => BodyError::Duplicate,
        _ => BodyError::Syntax(e.line(), e.column()),
    })
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// `{"errcode":N,"errmsg":"..."}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub errcode: i32,
    pub errmsg: &'a str,
}

/// `/cgi-bin/token` and `/cgi-bin/stable_token` success.
#[derive(Debug, Serialize)]
pub struct TokenBody<'a> {
    pub access_token: &'a str,
    pub expires_in: u64,
}

/// `quota/get` success.
#[derive(Debug, Serialize)]
pub struct QuotaReply {
    pub errcode: i32,
    pub errmsg: &'static str,
    pub quota: QuotaFigures,
    pub rate_limit: RateFigures,
}

#[derive(Debug, Serialize)]
pub struct QuotaFigures {
    pub daily_limit: u64,
    pub used: u64,
    pub remain: u64,
}

#[derive(Debug, Serialize)]
pub struct RateFigures {
    pub call_count: u32,
    pub refresh_second: u32,
}

/// `visit/report` success: how many were recorded, and each item that was not.
#[derive(Debug, Serialize)]
pub struct VisitReply {
    pub errcode: i32,
    pub errmsg: &'static str,
    pub recorded: usize,
    pub failed: Vec<VisitFailure>,
}

#[derive(Debug, Serialize)]
pub struct VisitFailure {
    pub index: usize,
    pub errcode: i32,
    pub errmsg: String,
}

/// The v2 verdict response.
#[derive(Debug, Serialize)]
pub struct V2Body<'a> {
    pub errcode: i32,
    pub errmsg: &'static str,
    pub trace_id: &'a str,
    pub result: ResultWire,
    pub detail: Vec<DetailWire<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ResultWire {
    pub suggest: &'static str,
    pub label: u32,
}

/// One detail item; absent fields are omitted (the bare keyword item has only two).
#[derive(Debug, Serialize)]
pub struct DetailWire<'a> {
    pub strategy: &'static str,
    pub errcode: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggest: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prob: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<&'a str>,
}

impl<'a> V2Body<'a> {
    /// The wire form of a verdict. `reveal_builtin` adds the deciding built-in word to the
    /// content_model item (an operator setting; off by default).
    pub fn new(trace_id: &'a str, verdict: &'a Verdict, reveal_builtin: bool) -> Self {
        let detail = verdict
            .detail
            .iter()
            .map(|item| match item {
                DetailItem::ContentModel(c) => DetailWire {
                    strategy: "content_model",
                    errcode: 0,
                    suggest: Some(c.suggest.as_str()),
                    label: Some(c.label.code()),
                    prob: Some(c.prob),
                    level: None,
                    keyword: if reveal_builtin {
                        c.word.as_deref()
                    } else {
                        None
                    },
                },
                DetailItem::Keyword(k) => DetailWire {
                    strategy: "keyword",
                    errcode: 0,
                    suggest: Some(k.suggest.as_str()),
                    label: Some(k.label.code()),
                    prob: None,
                    level: Some(k.level),
                    keyword: Some(&k.keyword),
                },
                DetailItem::NoKeyword => DetailWire {
                    strategy: "keyword",
                    errcode: 0,
                    suggest: None,
                    label: None,
                    prob: None,
                    level: None,
                    keyword: None,
                },
            })
            .collect();
        V2Body {
            errcode: 0,
            errmsg: "ok",
            trace_id,
            result: ResultWire {
                suggest: verdict.result.suggest.as_str(),
                label: verdict.result.label.code(),
            },
            detail,
        }
    }
}

impl V2Body<'_> {
    /// The same JSON as `serde_json::to_vec(self)`, written directly: every v2 answer is one of
    /// these, and serde spends most of its time here scanning constant keys for characters to
    /// escape. Only the custom keyword (operator text) goes through serde_json's escaping.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut n = itoa::Buffer::new();
        out.extend_from_slice(b"{\"errcode\":");
        out.extend_from_slice(n.format(self.errcode).as_bytes());
        out.extend_from_slice(b",\"errmsg\":");
        string(out, self.errmsg);
        out.extend_from_slice(b",\"trace_id\":");
        string(out, self.trace_id);
        out.extend_from_slice(b",\"result\":{\"suggest\":");
        string(out, self.result.suggest);
        out.extend_from_slice(b",\"label\":");
        out.extend_from_slice(n.format(self.result.label).as_bytes());
        out.extend_from_slice(b"},\"detail\":[");
        for (i, d) in self.detail.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"strategy\":");
            string(out, d.strategy);
            out.extend_from_slice(b",\"errcode\":");
            out.extend_from_slice(n.format(d.errcode).as_bytes());
            if let Some(suggest) = d.suggest {
                out.extend_from_slice(b",\"suggest\":");
                string(out, suggest);
            }
            if let Some(label) = d.label {
                out.extend_from_slice(b",\"label\":");
                out.extend_from_slice(n.format(label).as_bytes());
            }
            if let Some(prob) = d.prob {
                out.extend_from_slice(b",\"prob\":");
                out.extend_from_slice(n.format(prob).as_bytes());
            }
            if let Some(level) = d.level {
                out.extend_from_slice(b",\"level\":");
                out.extend_from_slice(n.format(level).as_bytes());
            }
            if let Some(keyword) = d.keyword {
                out.extend_from_slice(b",\"keyword\":");
                string(out, keyword);
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }
}

/// A JSON string: written as it stands when nothing in it needs escaping (our constants and
/// trace ids), else by serde_json.
fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_json_written_directly_is_serdes() {
        use crate::engine::verdict::{ContentModel, KeywordHit, compose};
        use crate::engine::{Engine, Label, Suggest};

        let engine = Engine::builtin().unwrap();
        let mut verdicts: Vec<Verdict> = ["今天天气很好", "加微信买彩票赌博", "傻逼", ""]
            .iter()
            .map(|text| engine.check_with(&[text], None))
            .collect();
        // Operator words that need escaping, in both places a word can appear.
        let hit = |keyword: &str, suggest| KeywordHit {
            keyword: keyword.into(),
            label: Label::Abuse,
            level: 7,
            suggest,
        };
        let model = ContentModel {
            suggest: Suggest::Review,
            label: Label::Pornography,
            prob: 55,
            word: Some("a\"b\\c\u{1}d\u{7f}é".into()),
        };
        verdicts.push(compose(
            model,
            &[
                hit("q\"uote", Suggest::Risky),
                hit("tab\there", Suggest::Pass),
                hit("坏蛋", Suggest::Review),
            ],
        ));
        for verdict in &verdicts {
            for reveal in [false, true] {
                for trace in ["6744b7a0-3f2a91c4-0b1e55d2", "", "a\"b\n"] {
                    let body = V2Body::new(trace, verdict, reveal);
                    let mut direct = Vec::new();
                    body.write_json(&mut direct);
                    assert_eq!(
                        String::from_utf8(direct).unwrap(),
                        serde_json::to_string(&body).unwrap(),
                        "verdict {verdict:?}, reveal {reveal}"
                    );
                }
            }
        }
    }

    #[test]
    fn lenient_fields() {
        let b: MsgSecCheckBody<'_> = parse_body(
            br#"{"content":"hi","version":"2","scene":3.0,"openid":null,"title":"","nickname":5,"signature":[1,{"a":2}],"extra":{"x":[1]}}"#,
        )
        .unwrap();
        assert_eq!(b.content.value(), Some("hi"));
        assert_eq!(b.version, Int::Value(2));
        assert_eq!(b.scene, Int::Value(3));
        assert_eq!(b.openid, Str::Absent);
        assert_eq!(b.title, Str::Absent);
        assert_eq!(b.nickname, Str::Wrong);
        assert_eq!(b.signature, Str::Wrong);

        let b: MsgSecCheckBody<'_> =
            parse_body(br#"{"scene":"abc","version":true,"content":"\u8d4c\u535a"}"#).unwrap();
        assert_eq!(b.scene, Int::NotInteger);
        assert_eq!(b.version, Int::Wrong);
        assert_eq!(b.content.value(), Some("赌博"));
    }

    #[test]
    fn body_errors() {
        let p = |b: &[u8]| parse_body::<MsgSecCheckBody<'_>>(b).unwrap_err();
        assert_eq!(p(b""), BodyError::Empty);
        assert_eq!(p(b"  \n"), BodyError::Empty);
        assert_eq!(p(b"{\"content\":\"\xff\"}"), BodyError::NotUtf8);
        assert_eq!(p(b"{\"content\":"), BodyError::Syntax(1, 11));
        assert_eq!(p(b"[1,2]"), BodyError::NotObject);
        assert_eq!(p(b"\"text\""), BodyError::NotObject);
        assert_eq!(p(br#"{"content":"a","content":"b"}"#), BodyError::Duplicate);
    }

    #[test]
    fn lenient_bool() {
        for (json, want) in [
            (r#"{"force_refresh":true}"#, Bool::Value(true)),
            (r#"{"force_refresh":"false"}"#, Bool::Value(false)),
            (r#"{"force_refresh":1}"#, Bool::Value(true)),
            (r#"{"force_refresh":null}"#, Bool::Absent),
            (r#"{"force_refresh":"yes"}"#, Bool::Wrong),
        ] {
            let b: StableTokenBody<'_> = parse_body(json.as_bytes()).unwrap();
            assert_eq!(b.force_refresh, want, "{json}");
        }
    }
}
