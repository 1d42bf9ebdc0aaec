//! Parsing and validation of whole documents, including the Easegress quick start verbatim.

use meshgress_spec::{FilterSpec, Object, parse_object, parse_object_str, validate_set};

const SERVER_DEMO: &str = r#"
kind: HTTPServer
name: server-demo
port: 10080
keepAlive: true
https: false
rules:
  - paths:
    - pathPrefix: /pipeline
      backend: pipeline-demo
"#;

const PIPELINE_DEMO: &str = r#"
name: pipeline-demo
kind: HTTPPipeline
flow:
  - filter: validator
    jumpIf: { invalid: END }
  - filter: requestAdaptor
  - filter: proxy
filters:
  - name: validator
    kind: Validator
    headers:
      Content-Type:
        values:
        - application/json
  - name: requestAdaptor
    kind: RequestAdaptor
    header:
      set:
        X-Adapt-Key: goodplan
  - name: proxy
    kind: Proxy
    mainPool:
      servers:
      - url: http://127.0.0.1:9095
      - url: http://127.0.0.1:9096
      - url: http://127.0.0.1:9097
      loadBalance:
        policy: roundRobin
"#;

fn err(doc: &str) -> String {
    match parse_object_str(doc) {
        Ok(o) => panic!("expected an error, got {o:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn quick_start_documents_parse_with_defaults() {
    let server = parse_object_str(SERVER_DEMO).unwrap();
    let Object::HttpServer(s) = &server else {
        panic!("not a server")
    };
    assert_eq!(s.port, 10080);
    assert_eq!(s.keep_alive_timeout.get().as_secs(), 60);
    assert_eq!(s.max_connections, 10240);
    assert_eq!(s.rules[0].paths[0].backend, "pipeline-demo");
    let json = server.to_json();
    assert_eq!(json["keepAliveTimeout"], "60s");
    assert_eq!(json["kind"], "HTTPServer");

    let pipeline = parse_object_str(PIPELINE_DEMO).unwrap();
    assert_eq!(pipeline.kind(), "HTTPPipeline");
    let Object::Pipeline(p) = &pipeline else {
        panic!("not a pipeline")
    };
    assert_eq!(p.steps().len(), 3);
    let Some(FilterSpec::Proxy(proxy)) = p.filter("proxy") else {
        panic!("no proxy")
    };
    assert_eq!(proxy.main_pool().unwrap().servers.len(), 3);
    assert_eq!(proxy.max_idle_conns_per_host, 1024);
}

#[test]
fn canonical_json_reads_back_to_the_same_object() {
    for doc in [SERVER_DEMO, PIPELINE_DEMO] {
        let first = parse_object_str(doc).unwrap();
        let again = parse_object(&first.to_json()).unwrap();
        assert_eq!(first, again);
        assert_eq!(first.to_json(), again.to_json());
    }
}

#[test]
fn v2_pools_form_is_accepted() {
    let doc = r#"
kind: Pipeline
name: p2
filters:
  - name: proxy
    kind: Proxy
    pools:
    - servers: [{url: "http://127.0.0.1:1", tags: [v2]}]
      filter: {headers: {X-Canary: {exact: "yes"}}}
    - servers: [{url: "http://127.0.0.1:2"}]
      loadBalance: {policy: headerHash, headerHashKey: X-User}
"#;
    let Object::Pipeline(p) = parse_object_str(doc).unwrap() else {
        panic!()
    };
    let Some(FilterSpec::Proxy(proxy)) = p.filter("proxy") else {
        panic!()
    };
    assert_eq!(
        proxy.main_pool().unwrap().servers[0].url,
        "http://127.0.0.1:2"
    );
    assert_eq!(proxy.candidate_pools().len(), 1);
}

#[test]
fn errors_name_the_field_at_fault() {
    let cases = [
        ("kind: Nope\nname: a", "kind: unknown kind \"Nope\""),
        ("name: a", "kind: is required"),
        ("kind: HTTPServer", "name: is required"),
        (
            "kind: HTTPServer\nname: 'bad name'\nport: 1",
            "name: \"bad name\" is not a valid name",
        ),
        (
            "kind: HTTPServer\nname: s\nport: 10080\nbogus: 1",
            "unknown field `bogus`",
        ),
        (
            "kind: HTTPServer\nname: s\nport: '10080'",
            "port: invalid type",
        ),
        (
            "kind: HTTPServer\nname: s\nport: 70000",
            "port: invalid value",
        ),
        ("kind: HTTPServer\nname: s", "missing field `port`"),
        (
            "kind: HTTPServer\nname: s\nport: 1\nrules: [{paths: [{pathRegexp: '(', backend: p}]}]",
            "rules[0].paths[0].pathRegexp: bad regular expression",
        ),
        (
            "kind: HTTPServer\nname: s\nport: 1\nrules: [{paths: [{path: /a}]}]",
            "missing field `backend`",
        ),
        (
            "kind: HTTPServer\nname: s\nport: 1\nkeepAliveTimeout: 10",
            "keepAliveTimeout: invalid type",
        ),
        (
            "kind: HTTPServer\nname: s\nport: 1\nkeepAliveTimeout: 10d",
            "keepAliveTimeout: invalid duration",
        ),
        (
            "kind: HTTPServer\nname: s\nport: 1\nrules: [{paths: [{rewriteTarget: /x, backend: p}]}]",
            "rules[0].paths[0].rewriteTarget: needs one of",
        ),
        (
            "kind: HTTPServer\nname: s\nport: 1\nrules: [{paths: [{methods: [get], backend: p}]}]",
            "methods[0]: unknown method",
        ),
    ];
    for (doc, want) in cases {
        let got = err(doc);
        assert!(
            got.contains(want),
            "{doc:?}: got {got:?}, want it to contain {want:?}"
        );
    }
}

#[test]
fn pipeline_errors_name_the_field_at_fault() {
    let pipeline = |flow: &str, filters: &str| {
        format!("kind: HTTPPipeline\nname: p\nflow: {flow}\nfilters: {filters}")
    };
    let proxy = "{name: proxy, kind: Proxy, mainPool: {servers: [{url: 'http://127.0.0.1:9095'}]}}";
    let validator = "{name: v, kind: Validator, headers: {X-A: {values: [a]}}}";
    let cases = [
        (
            pipeline("[{filter: nope}]", &format!("[{proxy}]")),
            "flow[0].filter: names filter \"nope\"",
        ),
        (
            pipeline(
                "[{filter: v, jumpIf: {invalid: ghost}}, {filter: proxy}]",
                &format!("[{validator}, {proxy}]"),
            ),
            "flow[0].jumpIf.invalid: target \"ghost\"",
        ),
        (
            pipeline(
                "[{filter: proxy}, {filter: v, jumpIf: {invalid: proxy}}]",
                &format!("[{validator}, {proxy}]"),
            ),
            "jumps go forward only",
        ),
        (
            pipeline(
                "[{filter: v, jumpIf: {oops: END}}]",
                &format!("[{validator}]"),
            ),
            "flow[0].jumpIf.oops: Validator filter \"v\" has no result \"oops\"",
        ),
        (
            pipeline("[]", "[{name: x, kind: Magic}]"),
            "filters[0].kind: unknown filter kind \"Magic\"",
        ),
        (
            pipeline(
                "[]",
                "[{name: proxy, kind: Proxy, mainPool: {servers: [{url: 'not a url'}]}}]",
            ),
            "filters[0].mainPool.servers[0].url: bad URL",
        ),
        (
            pipeline(
                "[]",
                "[{name: proxy, kind: Proxy, mainPool: {servers: [{url: 'http://a:1'}], loadBalance: {policy: fastest}}}]",
            ),
            "filters[0].mainPool.loadBalance.policy: unknown policy",
        ),
        (
            pipeline(
                "[]",
                "[{name: proxy, kind: Proxy, mainPool: {servers: [{url: 'http://a:1', wat: 1}]}}]",
            ),
            "unknown field `wat`",
        ),
        (
            pipeline(
                "[]",
                "[{name: v, kind: Validator, headers: {X-A: {regexp: '['}}}]",
            ),
            "filters[0].headers.X-A.regexp: bad regular expression",
        ),
        (
            pipeline("[]", &format!("[{proxy}, {proxy}]")),
            "filters[1].name: duplicate filter name",
        ),
        (pipeline("[]", "[]"), "filters: needs at least one filter"),
    ];
    for (doc, want) in cases {
        let got = err(&doc);
        assert!(
            got.contains(want),
            "{doc:?}: got {got:?}, want it to contain {want:?}"
        );
    }
}

#[test]
fn duplicate_ports_are_rejected_against_the_later_object() {
    let a = parse_object_str("kind: HTTPServer\nname: a\nport: 10080").unwrap();
    let b = parse_object_str("kind: HTTPServer\nname: b\nport: 10080").unwrap();
    let c = parse_object_str("kind: HTTPServer\nname: c\nport: 10081").unwrap();
    let e = validate_set(&[a.clone(), c.clone(), b]).unwrap_err();
    assert_eq!(e.path, "port");
    assert!(e.message.contains("\"a\""), "{e}");
    validate_set(&[a, c]).unwrap();
    let wild =
        parse_object_str("kind: HTTPServer\nname: w\nport: 10081\naddress: 0.0.0.0").unwrap();
    let local =
        parse_object_str("kind: HTTPServer\nname: l\nport: 10081\naddress: 127.0.0.1").unwrap();
    let other =
        parse_object_str("kind: HTTPServer\nname: o\nport: 10081\naddress: 127.0.0.2").unwrap();
    assert!(
        validate_set(&[wild, local.clone()]).is_err(),
        "0.0.0.0 covers 127.0.0.1"
    );
    validate_set(&[local, other]).unwrap();
}

#[test]
fn header_names_are_checked_wherever_they_appear() {
    let cases = [
        (
            "kind: HTTPServer\nname: s\nport: 1\nrules: [{paths: [{headers: [{key: 'bad key', values: [a]}], backend: p}]}]",
            "rules[0].paths[0].headers[0].key",
        ),
        (
            "kind: Pipeline\nname: p\nfilters: [{name: x, kind: Proxy, mainPool: {servers: [{url: 'http://a:1'}], loadBalance: {policy: headerHash, headerHashKey: 'a b'}}}]",
            "filters[0].mainPool.loadBalance.headerHashKey",
        ),
        (
            "kind: Pipeline\nname: p\nfilters: [{name: x, kind: Proxy, pools: [{servers: [{url: 'http://a:1'}]}, {servers: [{url: 'http://b:1'}], filter: {headers: {'a:b': {exact: x}}}}]}]",
            "filters[0].pools[1].filter.headers.a:b",
        ),
    ];
    for (doc, want) in cases {
        let got = err(doc);
        assert!(
            got.contains(want) && got.contains("header name"),
            "{doc:?}: got {got:?}"
        );
    }
}
