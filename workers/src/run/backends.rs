//! What the workers run on: a transport and their stores, built once per process and shared by
//! every worker (the seed's warm-reuse pattern: one SDK configuration, one client per service).

use std::sync::Arc;

use aws_config::SdkConfig;
use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::{BusError, Topology, Transport};

use crate::aws_calls::AwsCalls;

/// The transport and stores of one `fleet run` process.
#[derive(Clone)]
pub struct Backends {
    /// Where the queues and topics are.
    pub transport: Arc<dyn Transport>,
    /// Where the workers keep their state.
    pub stores: Stores,
    /// The AWS calls made through these clients (empty on the embedded transport).
    pub calls: AwsCalls,
    /// The mailer of `mailer = "memory"`: what it sent, for the demo and tests.
    pub memory_mailer: Arc<crate::email::MemoryMailer>,
    /// SES v2 and SSM clients (AWS only): the email worker's mailer and its secrets.
    pub aws: Option<AwsClients>,
}

/// The AWS clients only some workers use, built once per process.
#[derive(Clone, Debug)]
pub struct AwsClients {
    /// SES v2, for `mailer = "ses"`.
    pub sesv2: aws_sdk_sesv2::Client,
    /// SSM Parameter Store, for secrets.
    pub ssm: aws_sdk_ssm::Client,
}

/// Where the workers keep their state.
#[derive(Clone)]
pub enum Stores {
    /// The workers' tables (named by the configuration: `table`, `analytics.table`).
    Dynamo {
        /// The one DynamoDB client of the process.
        client: aws_sdk_dynamodb::Client,
    },
    /// In memory, for the embedded transport (`fleet demo`, local runs).
    Memory(Arc<super::workers::MemoryStores>),
}

impl Backends {
    /// SQS, SNS and DynamoDB clients from one SDK configuration, counting their calls.
    pub fn aws(config: &SdkConfig) -> Self {
        let calls = AwsCalls::new();
        Self {
            transport: Arc::new(calls.sqs_transport(config)),
            stores: Stores::Dynamo {
                client: calls.dynamodb_client(config),
            },
            aws: Some(AwsClients {
                sesv2: calls.sesv2_client(config),
                ssm: calls.ssm_client(config),
            }),
            calls,
            memory_mailer: Arc::default(),
        }
    }

    /// The embedded transport with `topology` provisioned in it, and in-memory stores.
    ///
    /// # Errors
    /// When the topology cannot be provisioned.
    pub async fn embedded(topology: &Topology) -> Result<(Self, EmbeddedBus), BusError> {
        let bus = EmbeddedBus::new();
        bus.provision(topology).await?;
        let backends = Self {
            transport: Arc::new(bus.clone()),
            stores: Stores::Memory(Arc::default()),
            calls: AwsCalls::new(),
            memory_mailer: Arc::default(),
            aws: None,
        };
        Ok((backends, bus))
    }
}
