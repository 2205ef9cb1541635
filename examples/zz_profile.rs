use lightflow_remedy::*;
use std::time::Instant;
fn t(name: &str, script: &str, ctx: &str, code: u16) {
    let p = Policies::builder().source("10-site.rhai", script).build().unwrap();
    let f = Failure::asset(code, "x").unwrap();
    let mut h = History::new(1);
    h.record_failure(&f);
    let ctx = Context::from_json(ctx).unwrap();
    let mut n = 0u64;
    for _ in 0..2000 { let d = p.decide(&f, &h, &ctx); n += d.kind() as u64; }
    let start = Instant::now();
    for _ in 0..50_000 {
        let d = p.decide(std::hint::black_box(&f), std::hint::black_box(&h), &ctx);
        n += d.delay().map_or(1, |d| d.as_millis() as u64) + d.kind() as u64;
    }
    println!("{name:40} {:?} {}", start.elapsed() / 50_000, n % 2);
}
fn main() {
    t("unit", "fn decide(f, ctx) { () }", "{}", 2006);
    t("f.code", "fn decide(f, ctx) { if f.code == 1 { return fail(\"x\"); } }", "{}", 2006);
    t("ctx.plan", "fn decide(f, ctx) { if ctx.plan == \"trial\" { return fail(\"x\"); } }", r#"{"plan":"pro"}"#, 2006);
    t("ctx.asset[4k]", "fn decide(f, ctx) { if ctx.asset[\"4k\"] == false { return fail(\"x\"); } }", r#"{"asset": {"4k": true}}"#, 2006);
    t("return fail", "fn decide(f, ctx) { fail(\"x\") }", "{}", 2006);
    t("return retry", "fn decide(f, ctx) { retry() }", "{}", 2006);
    t("return resubmit", "fn decide(f, ctx) { resubmit(#{ \"4k\": false }) }", "{}", 2006);
    t("full returns", "fn decide(f, ctx) {\n if f.code == 2006 && ctx.asset[\"4k\"] == true { return resubmit(#{ \"4k\": false }); }\n if ctx.plan == \"trial\" { return fail(\"x\"); } }", r#"{"asset": {"4k": true}}"#, 2006);
    t("full falls", "fn decide(f, ctx) {\n if f.code == 2006 && ctx.asset[\"4k\"] == true { return resubmit(#{ \"4k\": false }); }\n if ctx.plan == \"trial\" { return fail(\"x\"); } }", r#"{"plan": "pro"}"#, 2503);
}
