use super::*;

const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn a_traceparent_round_trips() {
    let c = TraceContext::from_traceparent(SAMPLE).expect("valid");
    assert_eq!(c.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(c.span_id.to_string(), "00f067aa0ba902b7");
    assert!(c.sampled);
    assert_eq!(c.traceparent(), SAMPLE);
    let unsampled = TraceContext::from_traceparent(&SAMPLE.replace("-01", "-00")).expect("valid");
    assert!(!unsampled.sampled);
    assert!(unsampled.traceparent().ends_with("-00"));
}

#[test]
fn flags_other_than_sampled_are_read_but_not_kept() {
    let c = TraceContext::from_traceparent(&SAMPLE.replace("-01", "-03")).expect("valid");
    assert!(c.sampled);
    assert!(c.traceparent().ends_with("-01"));
}

#[test]
fn invalid_traceparents_are_refused() {
    let cases = [
        "",
        "00",
        // all-zero trace id, all-zero span id
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        // upper case, non-hex, wrong separators, wrong lengths
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        // version 00 allows nothing after the flags
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        // version ff is invalid, and the version is two hex digits
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        // a higher version with more fields must separate them with a dash
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        // a multi-byte character where a separator should be (must not panic)
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7é01",
        "é0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ];
    for case in cases {
        assert_eq!(TraceContext::from_traceparent(case), None, "{case:?}");
    }
}

#[test]
fn a_higher_version_is_read_by_its_first_fields() {
    let future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
    let c = TraceContext::from_traceparent(future).expect("valid");
    assert_eq!(c.traceparent(), SAMPLE, "written back as version 00");
    let exact = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert!(TraceContext::from_traceparent(exact).is_some());
}

#[test]
fn surrounding_blanks_are_ignored() {
    assert!(TraceContext::from_traceparent(&format!(" {SAMPLE}\t")).is_some());
}

#[test]
fn a_child_keeps_the_trace_and_flags_with_a_new_span() {
    let parent = TraceContext::from_traceparent(&SAMPLE.replace("-01", "-00")).expect("valid");
    let child = parent.child();
    assert_eq!(child.trace_id, parent.trace_id);
    assert_eq!(child.sampled, parent.sampled);
    assert_ne!(child.span_id, parent.span_id);
}

#[test]
fn roots_are_new_traces_whose_ids_x_ray_accepts() {
    let (a, b) = (TraceContext::root(), TraceContext::root());
    assert_ne!(a.trace_id, b.trace_id);
    assert!(a.sampled);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let time = u64::try_from(a.trace_id.to_u128() >> 96).expect("32 bits");
    assert!(now.abs_diff(time) < 5, "the id starts with the time");
    assert_eq!(TraceContext::from_traceparent(&a.traceparent()), Some(a));
}

#[test]
fn x_ray_headers_round_trip() {
    let c = TraceContext::from_traceparent(SAMPLE).expect("valid");
    let header = c.to_xray();
    assert_eq!(
        header,
        "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
    );
    assert_eq!(TraceContext::from_xray(&header), Some(c));
    let unsampled = TraceContext {
        sampled: false,
        ..c
    };
    assert!(unsampled.to_xray().ends_with("Sampled=0"));
    assert_eq!(
        TraceContext::from_xray(&unsampled.to_xray()),
        Some(unsampled)
    );
}

#[test]
fn x_ray_headers_as_aws_writes_them() {
    // Keys in another order, spaces, a lineage, and an undecided sampling.
    let header = "Parent=53995c3f42cd8ad8; Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=?;Lineage=a87bd80c:1";
    let c = TraceContext::from_xray(header).expect("valid");
    assert_eq!(c.trace_id.to_string(), "5759e988bd862e3fe1be46a994272793");
    assert_eq!(c.span_id.to_string(), "53995c3f42cd8ad8");
    assert!(c.sampled);
    let sampled_0 = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0";
    assert!(!TraceContext::from_xray(sampled_0).expect("valid").sampled);
}

#[test]
fn invalid_x_ray_headers_are_refused() {
    let cases = [
        "",
        "Root=1-5759e988-bd862e3fe1be46a994272793",
        "Parent=53995c3f42cd8ad8;Sampled=1",
        "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
        "Root=1-5759e98-8bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
        "Root=1-5759e988bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
        "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad",
        "Root=1-5759e988-BD862E3FE1BE46A994272793;Parent=53995c3f42cd8ad8",
        "Root=1-5759e988-bd862e3fe1be46a99427279é;Parent=53995c3f42cd8ad8",
    ];
    for case in cases {
        assert_eq!(TraceContext::from_xray(case), None, "{case:?}");
    }
}

#[tokio::test]
async fn the_current_context_is_the_scope_s() {
    assert_eq!(current(), None);
    let c = TraceContext::root();
    let seen = scope(c, async { current() }).await;
    assert_eq!(seen, Some(c));
    assert_eq!(current(), None);
}

#[test]
fn the_written_traceparent_is_the_formatted_one_and_reads_back() {
    for i in 0..2_000 {
        let mut c = TraceContext::root();
        c.sampled = i % 2 == 0;
        let formatted = format!(
            "00-{:032x}-{:016x}-{:02x}",
            c.trace_id.to_u128(),
            c.span_id.to_u64(),
            u8::from(c.sampled)
        );
        assert_eq!(c.traceparent(), formatted);
        assert_eq!(c.to_string(), formatted);
        assert_eq!(TraceContext::from_traceparent(&formatted), Some(c));
    }
}
