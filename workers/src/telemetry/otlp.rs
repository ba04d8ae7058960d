//! The OTLP/HTTP span processor of `[observability.tracing]`: a batch processor (its own
//! thread, spans queued and sent in batches, dropped rather than blocking a handler when the
//! queue is full) over the OTLP/HTTP exporter, protobuf or JSON.

use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SpanProcessor};

use super::TelemetryError;
use crate::run::config::{OtlpProtocol, TracingConfig};

/// The OTLP/HTTP path of traces, added to an endpoint that does not end with it.
const TRACES_PATH: &str = "/v1/traces";

/// The URL spans are posted to: the endpoint as configured when it ends with `/v1/traces`,
/// else the endpoint with it added (as `OTEL_EXPORTER_OTLP_ENDPOINT` is read).
///
/// # Errors
/// `Config` for an endpoint that is not `http://` (the exporter is built without TLS: export to
/// a collector running beside the process).
pub fn traces_url(endpoint: &str) -> Result<String, TelemetryError> {
    if !endpoint.starts_with("http://") {
        return Err(TelemetryError::Config(format!(
            "otlp_endpoint {endpoint:?} must start with http:// (spans are exported without TLS, to a collector beside the process)"
        )));
    }
    let base = endpoint.trim_end_matches('/');
    Ok(if base.ends_with(TRACES_PATH) {
        base.to_owned()
    } else {
        format!("{base}{TRACES_PATH}")
    })
}

/// The batch processor exporting to `config.otlp_endpoint`, or `None` when it is unset. The
/// spans' resource names the service `fleet` (`OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES` override and add, as the OpenTelemetry SDKs read them).
///
/// # Errors
/// `Config` for an endpoint that cannot be used; `Exporter` when the exporter cannot be built.
pub fn processor(config: &TracingConfig) -> Result<Option<BatchSpanProcessor>, TelemetryError> {
    let Some(endpoint) = &config.otlp_endpoint else {
        return Ok(None);
    };
    let protocol = match config.otlp_protocol {
        OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
        OtlpProtocol::HttpJson => Protocol::HttpJson,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url(endpoint)?)
        .with_protocol(protocol)
        .build()
        .map_err(|e| TelemetryError::Exporter(Box::new(e)))?;
    let mut processor = BatchSpanProcessor::builder(exporter).build();
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("fleet");
    }
    processor.set_resource(&resource.build());
    Ok(Some(processor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_once() {
        for (endpoint, url) in [
            ("http://collector:4318", "http://collector:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            ("http://c:4318/v1/traces", "http://c:4318/v1/traces"),
            ("http://c/otlp", "http://c/otlp/v1/traces"),
        ] {
            assert_eq!(traces_url(endpoint).unwrap(), url);
        }
    }

    #[test]
    fn an_endpoint_without_plain_http_is_refused() {
        for endpoint in ["https://collector:4318", "collector:4318", ""] {
            assert!(traces_url(endpoint).is_err(), "{endpoint}");
        }
    }

    #[test]
    fn no_endpoint_no_processor() {
        assert!(processor(&TracingConfig::default()).unwrap().is_none());
    }
}
