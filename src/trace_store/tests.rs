use super::*;

/// A store in a new temporary directory (kept alive by the returned guard).
fn fresh_store(options: StoreOptions) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &options).unwrap();
    (dir, store)
}

fn span(
    trace: u8,
    id: u64,
    parent: Option<u64>,
    service: &Arc<Process>,
    op: &str,
    start: u64,
    dur: u64,
) -> Span {
    let trace_id = TraceId([trace; 16]);
    Span {
        trace_id,
        span_id: SpanId::from_u64(id),
        operation_name: op.into(),
        references: parent
            .map(|p| vec![SpanRef { ref_type: RefType::ChildOf, trace_id, span_id: SpanId::from_u64(p) }])
            .unwrap_or_default(),
        flags: 1,
        start_time_us: start,
        duration_us: dur,
        tags: vec![
            KeyValue::str("span.kind", "server"),
            KeyValue { key: "http.status_code".into(), value: Value::Int64(200) },
        ],
        logs: vec![Log { timestamp_us: start + 1, fields: vec![KeyValue::str("event", "hello")] }],
        process: service.clone(),
        warnings: Vec::new(),
    }
}

fn process(name: &str) -> Arc<Process> {
    Arc::new(Process { service_name: name.into(), tags: vec![KeyValue::str("host.name", "vm1")] })
}

#[test]
fn writes_reads_searches_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_us();
    let (web, db) = (process("web"), process("db"));
    {
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let spans = vec![
            span(1, 1, None, &web, "GET /", now - 5000, 4000),
            span(1, 2, Some(1), &db, "SELECT", now - 4000, 1000),
            span(2, 3, None, &web, "GET /health", now - 3000, 10),
        ];
        let out = store.writer().write(&spans).unwrap();
        assert_eq!(out.stored, 3);
        let trace = store.reader().trace(TraceId([1; 16])).unwrap().unwrap();
        assert_eq!(trace, spans[..2].to_vec());
        store.flush().unwrap();
    }
    let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
    let r = store.reader();
    assert_eq!(r.trace(TraceId([1; 16])).unwrap().unwrap().len(), 2);
    assert!(r.trace(TraceId([9; 16])).unwrap().is_none());
    assert_eq!(r.services().unwrap(), vec!["db".to_string(), "web".to_string()]);
    let ops = r.operations("web", None).unwrap();
    assert_eq!(ops.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), vec!["GET /", "GET /health"]);
    assert!(r.operations("web", Some("client")).unwrap().is_empty());
    let q = |f: &dyn Fn(&mut TraceQuery)| {
        let mut q = TraceQuery {
            service: "web".into(),
            start_min_us: now - 60_000_000,
            start_max_us: now,
            limit: 100,
            ..Default::default()
        };
        f(&mut q);
        r.find_trace_ids(&q).unwrap()
    };
    assert_eq!(q(&|_| {}), vec![TraceId([2; 16]), TraceId([1; 16])]);
    assert_eq!(q(&|q| q.limit = 1), vec![TraceId([2; 16])]);
    assert_eq!(q(&|q| q.operation = Some("GET /".into())), vec![TraceId([1; 16])]);
    assert_eq!(q(&|q| q.duration_min_us = Some(1000)), vec![TraceId([1; 16])]);
    assert_eq!(q(&|q| q.duration_max_us = Some(100)), vec![TraceId([2; 16])]);
    assert_eq!(q(&|q| q.tags = vec![("http.status_code".into(), "200".into())]).len(), 2);
    assert_eq!(q(&|q| q.tags = vec![("host.name".into(), "vm1".into())]).len(), 2);
    assert!(q(&|q| q.tags = vec![("http.status_code".into(), "500".into())]).is_empty());
    assert!(q(&|q| q.service = "nope".into()).is_empty());
    let deps = r.dependencies(now, 3_600_000_000).unwrap();
    assert_eq!(deps, vec![Dependency { parent: "web".into(), child: "db".into(), call_count: 1 }]);
}

#[test]
fn retention_drops_old_buckets() {
    let (_dir, store) =
        fresh_store(StoreOptions { retention: Duration::from_secs(28), ..Default::default() });
    let now = now_us();
    let web = process("web");
    let out = store
        .writer()
        .write(&[span(1, 1, None, &web, "old", now - 20_000_000, 1), span(2, 2, None, &web, "new", now, 1)])
        .unwrap();
    assert_eq!(out.stored, 2);
    // A span already past retention is refused, not stored and dropped later.
    let out = store.writer().write(&[span(3, 3, None, &web, "ancient", now - 60_000_000, 1)]).unwrap();
    assert_eq!(out.expired, 1);
    let dropped = store.enforce_retention(now + 10_000_000).unwrap();
    assert!(dropped.dropped_by_time >= 1, "{dropped:?}");
    assert!(store.reader().trace(TraceId([1; 16])).unwrap().is_none());
    assert!(store.reader().trace(TraceId([2; 16])).unwrap().is_some());
}

#[test]
fn names_no_live_span_carries_are_forgotten_and_come_back_when_seen() {
    let (_dir, store) =
        fresh_store(StoreOptions { retention: Duration::from_secs(28), ..Default::default() });
    let now = now_us();
    let (web, gone) = (process("web"), process("gone"));
    store
        .writer()
        .write(&[
            span(1, 1, None, &gone, "old-op", now - 25_000_000, 1),
            span(2, 2, None, &web, "op", now, 1),
        ])
        .unwrap();
    assert_eq!(store.reader().services().unwrap(), ["gone", "web"]);
    // Still within retention: nothing forgotten.
    assert_eq!(store.enforce_retention(now + 1_000_000).unwrap().names_forgotten, 0);
    // Past it for `gone` (service and operation), not for `web`.
    assert_eq!(store.enforce_retention(now + 5_000_000).unwrap().names_forgotten, 2);
    assert_eq!(store.reader().services().unwrap(), ["web"]);
    assert!(store.reader().operations("gone", None).unwrap().is_empty());
    // A span of a forgotten service brings the name back.
    store.writer().write(&[span(3, 3, None, &gone, "new-op", now, 1)]).unwrap();
    assert_eq!(store.reader().services().unwrap(), ["gone", "web"]);
}

#[test]
fn spans_from_the_far_future_are_refused_and_open_no_bucket() {
    let (_dir, store) = fresh_store(StoreOptions::default());
    let now = now_us();
    let web = process("web");
    let skewed = now + FUTURE_ALLOWANCE_US / 2;
    let out = store
        .writer()
        .write(&[
            span(1, 1, None, &web, "skewed", skewed, 1),
            span(2, 2, None, &web, "far", now + 10 * FUTURE_ALLOWANCE_US, 1),
            span(3, 3, None, &web, "forever", u64::MAX / 2, 1),
        ])
        .unwrap();
    assert_eq!((out.stored, out.future), (1, 2), "{out:?}");
    assert_eq!(store.bucket_count(), 1);
    assert!(store.reader().trace(TraceId([1; 16])).unwrap().is_some());
    assert!(store.reader().trace(TraceId([2; 16])).unwrap().is_none());
}

#[test]
fn duration_search_is_exact_when_a_trace_has_short_and_long_spans() {
    let (_dir, store) = fresh_store(StoreOptions::default());
    let now = now_us();
    let web = process("web");
    store
        .writer()
        .write(&[
            // Trace 1: spans of 10 µs and 5 ms, none between 100 µs and 1 ms.
            span(1, 1, None, &web, "GET /", now - 9000, 5000),
            span(1, 2, Some(1), &web, "GET /", now - 8000, 10),
            span(2, 3, None, &web, "GET /", now - 7000, 500),
        ])
        .unwrap();
    let q = TraceQuery {
        service: "web".into(),
        start_min_us: now - 60_000_000,
        start_max_us: now,
        duration_min_us: Some(100),
        duration_max_us: Some(1000),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(store.reader().find_trace_ids(&q).unwrap(), vec![TraceId([2; 16])]);
    let q = TraceQuery { duration_max_us: Some(5000), operation: Some("GET /".into()), ..q };
    assert_eq!(store.reader().find_trace_ids(&q).unwrap(), vec![TraceId([2; 16]), TraceId([1; 16])]);
}

#[test]
fn search_returns_the_newest_traces_across_many_writes() {
    let (_dir, store) = fresh_store(StoreOptions::default());
    let now = now_us();
    let web = process("web");
    // 30 writes of 4 traces each, written out of time order, so batches overlap in time.
    for w in 0..30u64 {
        let spans: Vec<Span> = (0..4u64)
            .map(|i| {
                let n = (w * 7 % 30) * 4 + i;
                span(1, n + 1, None, &web, "op", now - 10_000_000 + n * 1000, 5)
            })
            .map(|mut s| {
                let n = s.span_id.as_u64() - 1;
                s.trace_id = TraceId::from_high_low(1, n + 1);
                s
            })
            .collect();
        store.writer().write(&spans).unwrap();
    }
    let q = TraceQuery {
        service: "web".into(),
        start_min_us: now - 60_000_000,
        start_max_us: now,
        limit: 5,
        ..Default::default()
    };
    let ids = store.reader().find_trace_ids(&q).unwrap();
    let want: Vec<TraceId> = (0..5u64).map(|k| TraceId::from_high_low(1, 120 - k)).collect();
    assert_eq!(ids, want);
    let q = TraceQuery { tags: vec![("http.status_code".into(), "200".into())], limit: 200, ..q };
    assert_eq!(store.reader().find_trace_ids(&q).unwrap().len(), 120);
}
