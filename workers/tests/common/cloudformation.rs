//! Stacks in moto's CloudFormation.

use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};

/// Creates stack `name` from `template` with `parameters` and waits until it is complete; its
/// outputs.
pub async fn create_stack(
    sdk: &aws_config::SdkConfig,
    name: &str,
    template: &str,
    parameters: &[(&str, String)],
) -> Vec<(String, String)> {
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    cfn.create_stack()
        .stack_name(name)
        .template_body(template)
        .set_parameters(Some(
            parameters
                .iter()
                .map(|(key, value)| {
                    Parameter::builder()
                        .parameter_key(*key)
                        .parameter_value(value)
                        .build()
                })
                .collect(),
        ))
        .capabilities(Capability::CapabilityIam)
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let out = cfn.describe_stacks().stack_name(name).send().await.unwrap();
        let stack = &out.stacks()[0];
        match stack.stack_status() {
            Some(StackStatus::CreateComplete) => {
                return stack
                    .outputs()
                    .iter()
                    .map(|o| {
                        (
                            o.output_key().unwrap().to_owned(),
                            o.output_value().unwrap().to_owned(),
                        )
                    })
                    .collect();
            }
            Some(StackStatus::CreateInProgress) if started.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("stack {name}: {other:?} {:?}", stack.stack_status_reason()),
        }
    }
}
