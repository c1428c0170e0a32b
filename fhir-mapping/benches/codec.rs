//! Hot pure functions of the mapping layer: parse + structural validation of a HEP
//! CarePlan, serialisation back to canonical JSON, rendering as XML.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fhir_mapping::{Format, ParseLimits, parse_resource, render};

const CAREPLAN: &[u8] = include_bytes!("../tests/fixtures/careplan-hep.json");

fn codec(c: &mut Criterion) {
    let limits = ParseLimits::default();
    let mut g = c.benchmark_group("careplan");
    g.throughput(Throughput::Bytes(CAREPLAN.len() as u64));
    g.bench_function("parse+validate json", |b| {
        b.iter(|| parse_resource(CAREPLAN, Format::Json, &limits).map(|r| r.to_json_bytes().len()))
    });
    let stored = parse_resource(CAREPLAN, Format::Json, &limits)
        .map(|r| r.to_json_bytes())
        .unwrap_or_default();
    g.bench_function("render xml", |b| {
        b.iter(|| render(&stored, Format::Xml, false).map(|x| x.len()))
    });
    g.bench_function("render pretty json", |b| {
        b.iter(|| render(&stored, Format::Json, true).map(|x| x.len()))
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
