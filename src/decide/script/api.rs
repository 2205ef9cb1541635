//! What scripts can call: `on`, `otherwise`, `http`, the actions, `.then`, and the views of a failure and its
//! context.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::{Range, RangeInclusive};

use rhai::{Array, Dynamic, Engine, EvalAltResult, INT, ImmutableString, Map, NativeCallContext};

use super::suggest::{did_you_mean, quoted};
use super::views::register_views;
use super::{limits, options, sandbox};
use crate::classify::catalogue::{self, Category};
use crate::decide::action::CredentialScope;
use crate::decide::policy::{Policy, Stage};
use crate::decide::rules::Matcher;
use crate::diagnostic::Pos;

type Result<T> = std::result::Result<T, Box<EvalAltResult>>;

/// The actions scripts can chain.
pub(crate) const ACTIONS: &[&str] =
    &["retry", "resubmit", "fix_credentials", "republish", "reconcile", "notify", "fail"];
/// The other functions of the language.
pub(crate) const BUILDERS: &[&str] = &["on", "otherwise", "http", "then"];

/// How a function of the language is called, for error messages.
pub(crate) fn usage(name: &str) -> &'static str {
    match name {
        "on" => "use on(code | range | \"category\" | http(..) | [codes..], policy)",
        "otherwise" => "use otherwise(policy)",
        "http" => "use http(status) or http(low..=high)",
        "then" => "use policy.then(policy)",
        "retry" => "use retry() or retry(#{ options })",
        "resubmit" => "use resubmit(#{ changes }) or resubmit(#{ changes }, #{ options })",
        "fix_credentials" => "use fix_credentials(\"storage\" | \"brightcove\" | \"upload\" | \"drm\" | \"api\")",
        "republish" => "use republish(\"brightcove\") or republish(\"brightcove\", #{ options })",
        "reconcile" => "use reconcile()",
        "notify" => "use notify(message) or notify(channel, message)",
        "fail" => "use fail(reason)",
        _ => "see the policy language reference in docs/policies.md",
    }
}

/// An `http(..)` matcher before it is registered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpMatch(Matcher);

/// A rule registered by `on(..)` or `otherwise(..)` while a file's top level runs. The rules of one `on([..])`
/// share their policy and its fingerprint.
#[derive(Debug, Clone)]
pub(crate) struct RuleSpec {
    pub(crate) matcher: Matcher,
    pub(crate) policy: Policy,
    pub(crate) chain: u64,
    pub(crate) pos: Option<Pos>,
}

/// The rules of the file being loaded, and where each matcher was first registered.
#[derive(Default)]
struct Collector {
    rules: Vec<RuleSpec>,
    seen: HashMap<Matcher, Option<Pos>>,
}

thread_local! {
    /// The rules of the file being loaded on this thread; `None` outside a load (e.g. inside `decide`).
    static COLLECTOR: RefCell<Option<Collector>> = const { RefCell::new(None) };
}

/// Runs `load` (a file's top level, possibly in several runs) and returns what it registered.
pub(crate) fn collecting<T>(load: impl FnOnce() -> T) -> (T, Vec<RuleSpec>) {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            COLLECTOR.with(|c| c.borrow_mut().take());
        }
    }
    COLLECTOR.with(|c| *c.borrow_mut() = Some(Collector::default()));
    let _reset = Reset;
    let result = load();
    let rules = COLLECTOR.with(|c| c.borrow_mut().take()).map(|c| c.rules).unwrap_or_default();
    (result, rules)
}

/// The most stages one policy chain may have.
pub(crate) const MAX_STAGES: usize = 64;

fn error(ctx: &NativeCallContext, message: impl Into<String>) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(Dynamic::from(message.into()), ctx.call_position()).into()
}

fn pos(ctx: &NativeCallContext) -> Option<Pos> {
    Pos::from_rhai(ctx.call_position())
}

/// What a registered rule costs against the evaluation's build bound.
const RULE_COST: usize = 64;

/// A policy registered by one `on(..)`, shared by the rules of each code it lists.
struct Registered {
    policy: Policy,
    chain: u64,
}

impl From<Policy> for Registered {
    fn from(policy: Policy) -> Self {
        Registered { chain: policy.fingerprint(), policy }
    }
}

fn register_rule(ctx: &NativeCallContext, matcher: Matcher, policy: &Registered) -> Result<()> {
    sandbox::charge(RULE_COST).map_err(|e| error(ctx, e))?;
    COLLECTOR.with(|c| {
        let mut c = c.borrow_mut();
        let Some(collector) = c.as_mut() else {
            return Err(error(
                ctx,
                "`on` and `otherwise` register rules while a policy file loads; `decide` returns a policy instead",
            ));
        };
        let here = pos(ctx);
        if let Some(first) = collector.seen.get(&matcher) {
            let at = first.map(|p| format!(" at line {}", p.line)).unwrap_or_default();
            let what = if matcher == Matcher::Otherwise { "otherwise".to_owned() } else { format!("on({matcher})") };
            return Err(error(ctx, format!("`{what}` is already defined in this file{at}")));
        }
        collector.seen.insert(matcher, here);
        collector.rules.push(RuleSpec { matcher, policy: policy.policy.clone(), chain: policy.chain, pos: here });
        Ok(())
    })
}

fn asset_code(ctx: &NativeCallContext, code: INT) -> Result<u16> {
    let range = catalogue::MIN_ASSET_CODE as INT..=catalogue::MAX_ASSET_CODE as INT;
    if range.contains(&code) {
        return Ok(code as u16);
    }
    if (catalogue::MIN_HTTP_ERROR as INT..=catalogue::MAX_HTTP_ERROR as INT).contains(&code) {
        return Err(error(
            ctx,
            format!("{code} is not an asset error code (1000..=9999): for a failed API call write http({code})"),
        ));
    }
    Err(error(ctx, format!("code {code} is out of range: asset error codes are 1000..=9999")))
}

fn http_status(ctx: &NativeCallContext, status: INT) -> Result<u16> {
    if (catalogue::MIN_HTTP_ERROR as INT..=catalogue::MAX_HTTP_ERROR as INT).contains(&status) {
        return Ok(status as u16);
    }
    Err(error(ctx, format!("HTTP status {status} is not an error status: http(..) takes 400..=599")))
}

/// Checks a range's order and converts its ends with `convert`.
fn range_ends(
    ctx: &NativeCallContext,
    lo: INT,
    hi: INT,
    written: &str,
    convert: fn(&NativeCallContext, INT) -> Result<u16>,
) -> Result<(u16, u16)> {
    if hi < lo {
        return Err(error(ctx, format!("the range {written} is inverted: write it low to high")));
    }
    Ok((convert(ctx, lo)?, convert(ctx, hi)?))
}

fn exclusive(ctx: &NativeCallContext, r: &Range<INT>) -> Result<(INT, INT)> {
    if r.end <= r.start {
        return Err(error(ctx, format!("the range {}..{} is empty", r.start, r.end)));
    }
    Ok((r.start, r.end - 1))
}

fn code_matcher(ctx: &NativeCallContext, value: &Dynamic) -> Result<Matcher> {
    if let Ok(code) = value.as_int() {
        return asset_code(ctx, code).map(Matcher::Code);
    }
    if let Some(r) = value.clone().try_cast::<RangeInclusive<INT>>() {
        let written = format!("{}..={}", r.start(), r.end());
        return range_ends(ctx, *r.start(), *r.end(), &written, asset_code).map(|(l, h)| Matcher::Range(l, h));
    }
    if let Some(r) = value.clone().try_cast::<Range<INT>>() {
        let (lo, hi) = exclusive(ctx, &r)?;
        return range_ends(ctx, lo, hi, &format!("{}..{}", r.start, r.end), asset_code)
            .map(|(l, h)| Matcher::Range(l, h));
    }
    Err(error(ctx, format!("a list given to `on` holds codes and ranges, not {}", value.type_name())))
}

fn category(ctx: &NativeCallContext, name: &str) -> Result<Matcher> {
    name.parse::<Category>().map(Matcher::Category).map_err(|_| {
        let known: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
        let hint = did_you_mean(name, known.iter().copied());
        error(ctx, format!("unknown category {}{hint} (categories: {})", quoted(name), known.join(", ")))
    })
}

/// A waiting stage with the options `opts`, charged with `texts` bytes besides the stage.
fn waiting(
    ctx: &NativeCallContext,
    action: &str,
    opts: &Map,
    texts: usize,
    build: impl FnOnce(crate::decide::Backoff) -> Stage,
) -> Result<Policy> {
    let extra: &[&str] = if action == "republish" { options::REPUBLISH_OPTIONS } else { &[] };
    let backoff = options::backoff(action, opts, extra).map_err(|e| error(ctx, e))?;
    built(ctx, build(backoff), texts)
}

/// A one-stage policy written here, charged to the evaluation with `texts` bytes of text.
fn built(ctx: &NativeCallContext, stage: Stage, texts: usize) -> Result<Policy> {
    sandbox::charge(limits::STAGE_COST.saturating_add(texts)).map_err(|e| error(ctx, e))?;
    Ok(stage.at_opt(pos(ctx)).into())
}

fn text(ctx: &NativeCallContext, what: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(error(ctx, format!("{what} must not be empty")));
    }
    Ok(())
}

/// How deep the changes of a `resubmit` may nest (asset parameters are flat in practice).
const MAX_AMEND_DEPTH: usize = 8;

/// The changes of a `resubmit` as JSON, and what they cost against the build bound.
fn amend_map(ctx: &NativeCallContext, amend: Map) -> Result<(serde_json::Map<String, serde_json::Value>, usize)> {
    if amend.is_empty() {
        return Err(error(
            ctx,
            "resubmit needs the parameters to change, e.g. resubmit(#{ \"4k\": false }); to resubmit unchanged use retry()",
        ));
    }
    let mut json = serde_json::Map::new();
    let mut size = 0;
    for (key, value) in amend {
        size += key.len();
        json.insert(key.into(), json_value(&value, 1, &mut size).map_err(|e| error(ctx, e))?);
    }
    Ok((json, size))
}

/// What one JSON value costs against the build bound besides its text.
const JSON_COST: usize = 32;

/// A script value as JSON, at most [`MAX_AMEND_DEPTH`] levels deep; adds what it costs to `size`.
fn json_value(value: &Dynamic, depth: usize, size: &mut usize) -> std::result::Result<serde_json::Value, String> {
    use serde_json::Value;
    if depth > MAX_AMEND_DEPTH {
        return Err(format!("resubmit's changes nest deeper than {MAX_AMEND_DEPTH} levels"));
    }
    *size += JSON_COST;
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return Ok(Value::from(i));
    }
    if let Ok(f) = value.as_float() {
        return serde_json::Number::from_f64(f).map(Value::Number).ok_or_else(|| format!("{f} is not a JSON number"));
    }
    if let Ok(s) = value.as_immutable_string_ref() {
        *size += s.len();
        return Ok(Value::String(s.to_string()));
    }
    if let Ok(items) = value.as_array_ref() {
        return items
            .iter()
            .map(|v| json_value(v, depth + 1, size))
            .collect::<std::result::Result<_, _>>()
            .map(Value::Array);
    }
    if let Ok(map) = value.as_map_ref() {
        let mut object = serde_json::Map::new();
        for (key, v) in map.iter() {
            *size += key.len();
            object.insert(key.to_string(), json_value(v, depth + 1, size)?);
        }
        return Ok(Value::Object(object));
    }
    Err(format!(
        "resubmit's changes must be plain values (strings, numbers, booleans, lists, maps), not {}",
        value.type_name()
    ))
}

fn republish(ctx: &NativeCallContext, target: &str, opts: &Map) -> Result<Policy> {
    text(ctx, "republish's target", target)?;
    let new_reference_id = match opts.get("new_reference_id") {
        Some(v) => options::boolean("new_reference_id", v).map_err(|e| error(ctx, e))?,
        None => false,
    };
    waiting(ctx, "republish", opts, target.len(), |b| Stage::republish(target, new_reference_id, b))
}

pub(crate) fn register(engine: &mut Engine) {
    register_policy(engine);
    register_rules(engine);
    register_views(engine);
}

fn register_policy(engine: &mut Engine) {
    engine
        .register_type_with_name::<Policy>("Policy")
        .register_fn("to_string", |p: &mut Policy| p.to_string())
        .register_fn("to_debug", |p: &mut Policy| p.to_string())
        .register_fn("then", |ctx: NativeCallContext, p: &mut Policy, next: Policy| -> Result<Policy> {
            // Rhai's size limits do not see inside a policy: `p = p.then(p)` in a loop would double it each turn.
            let stages = p.stages().len() + next.stages().len();
            if stages > MAX_STAGES {
                return Err(error(
                    &ctx,
                    format!("a policy chain has at most {MAX_STAGES} stages; this one would have {stages}"),
                ));
            }
            sandbox::charge(stages.saturating_mul(limits::STAGE_COST)).map_err(|e| error(&ctx, e))?;
            Ok(p.clone().then(next))
        })
        .register_fn("retry", |ctx: NativeCallContext| waiting(&ctx, "retry", &Map::new(), 0, Stage::retry))
        .register_fn("retry", |ctx: NativeCallContext, opts: Map| waiting(&ctx, "retry", &opts, 0, Stage::retry))
        .register_fn("resubmit", |ctx: NativeCallContext, amend: Map| -> Result<Policy> {
            let (amend, size) = amend_map(&ctx, amend)?;
            waiting(&ctx, "resubmit", &Map::new(), size, |b| Stage::resubmit(amend, b))
        })
        .register_fn("resubmit", |ctx: NativeCallContext, amend: Map, opts: Map| -> Result<Policy> {
            let (amend, size) = amend_map(&ctx, amend)?;
            waiting(&ctx, "resubmit", &opts, size, |b| Stage::resubmit(amend, b))
        })
        .register_fn("fix_credentials", |ctx: NativeCallContext, scope: ImmutableString| -> Result<Policy> {
            let scope = scope.parse::<CredentialScope>().map_err(|e| error(&ctx, e))?;
            built(&ctx, Stage::fix_credentials(scope), 0)
        })
        .register_fn("republish", |ctx: NativeCallContext, target: ImmutableString| {
            republish(&ctx, &target, &Map::new())
        })
        .register_fn("republish", |ctx: NativeCallContext, target: ImmutableString, opts: Map| {
            republish(&ctx, &target, &opts)
        })
        .register_fn("reconcile", |ctx: NativeCallContext| built(&ctx, Stage::reconcile(), 0))
        .register_fn("notify", |ctx: NativeCallContext, message: ImmutableString| -> Result<Policy> {
            text(&ctx, "notify's message", &message)?;
            built(&ctx, Stage::notify("ops", message.as_str()), message.len())
        })
        .register_fn(
            "notify",
            |ctx: NativeCallContext, channel: ImmutableString, message: ImmutableString| -> Result<Policy> {
                text(&ctx, "notify's channel", &channel)?;
                text(&ctx, "notify's message", &message)?;
                built(&ctx, Stage::notify(channel.as_str(), message.as_str()), channel.len() + message.len())
            },
        )
        .register_fn("fail", |ctx: NativeCallContext, reason: ImmutableString| -> Result<Policy> {
            text(&ctx, "fail's reason", &reason)?;
            built(&ctx, Stage::fail(reason.as_str()), reason.len())
        });
}

fn register_rules(engine: &mut Engine) {
    engine
        .register_type_with_name::<HttpMatch>("HttpMatcher")
        .register_fn("to_string", |h: &mut HttpMatch| h.0.to_string())
        .register_fn("http", |ctx: NativeCallContext, status: INT| -> Result<HttpMatch> {
            Ok(HttpMatch(Matcher::Http(http_status(&ctx, status)?)))
        })
        .register_fn("http", |ctx: NativeCallContext, r: RangeInclusive<INT>| -> Result<HttpMatch> {
            let written = format!("{}..={}", r.start(), r.end());
            let (lo, hi) = range_ends(&ctx, *r.start(), *r.end(), &written, http_status)?;
            Ok(HttpMatch(Matcher::HttpRange(lo, hi)))
        })
        .register_fn("http", |ctx: NativeCallContext, r: Range<INT>| -> Result<HttpMatch> {
            let (lo, hi) = exclusive(&ctx, &r)?;
            let (lo, hi) = range_ends(&ctx, lo, hi, &format!("{}..{}", r.start, r.end), http_status)?;
            Ok(HttpMatch(Matcher::HttpRange(lo, hi)))
        })
        .register_fn("on", |ctx: NativeCallContext, code: INT, p: Policy| {
            register_rule(&ctx, Matcher::Code(asset_code(&ctx, code)?), &p.into())
        })
        .register_fn("on", |ctx: NativeCallContext, r: RangeInclusive<INT>, p: Policy| {
            register_rule(&ctx, code_matcher(&ctx, &Dynamic::from(r))?, &p.into())
        })
        .register_fn("on", |ctx: NativeCallContext, r: Range<INT>, p: Policy| {
            register_rule(&ctx, code_matcher(&ctx, &Dynamic::from(r))?, &p.into())
        })
        .register_fn("on", |ctx: NativeCallContext, name: ImmutableString, p: Policy| {
            register_rule(&ctx, category(&ctx, &name)?, &p.into())
        })
        .register_fn("on", |ctx: NativeCallContext, h: HttpMatch, p: Policy| register_rule(&ctx, h.0, &p.into()))
        .register_fn("on", |ctx: NativeCallContext, codes: Array, p: Policy| -> Result<()> {
            if codes.is_empty() {
                return Err(error(&ctx, "on([], ..) lists no codes"));
            }
            let policy = Registered::from(p);
            for value in &codes {
                register_rule(&ctx, code_matcher(&ctx, value)?, &policy)?;
            }
            Ok(())
        })
        .register_fn("otherwise", |ctx: NativeCallContext, p: Policy| {
            register_rule(&ctx, Matcher::Otherwise, &p.into())
        });
}
