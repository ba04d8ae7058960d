use super::*;
use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem, Update};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn key(pk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("PK".to_owned(), s(pk)), ("SK".to_owned(), s("x"))])
}

fn recorded(service: &'static str, input: Input) -> Vec<String> {
    let issued = IssuedActions::new();
    issued.record_input(service, &input);
    issued.snapshot().iter().map(ToString::to_string).collect()
}

#[test]
fn a_transaction_is_the_action_of_each_item_with_its_key_pattern() {
    let put = Put::builder()
        .table_name("fleet")
        .set_item(Some(key("USER#c-1")))
        .build()
        .unwrap();
    let guard = Put::builder()
        .table_name("fleet")
        .set_item(Some(key("ORDER#o-1")))
        .build()
        .unwrap();
    let update = Update::builder()
        .table_name("counters")
        .set_key(Some(key("COUNTER#event#x#day#2026-11-28")))
        .update_expression("ADD #v :d")
        .build()
        .unwrap();
    let check = ConditionCheck::builder()
        .table_name("fleet")
        .set_key(Some(key("IDEMPOTENCY#email#e-1")))
        .condition_expression("attribute_exists(PK)")
        .build()
        .unwrap();
    let input =
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput::builder()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().put(guard).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().condition_check(check).build())
            .build()
            .unwrap();
    assert_eq!(
        recorded("dynamodb", Input::erase(input)),
        [
            "dynamodb:ConditionCheckItem table:fleet leading-keys=IDEMPOTENCY#email#*",
            "dynamodb:PutItem table:fleet leading-keys=ORDER#*,USER#*",
            "dynamodb:UpdateItem table:counters leading-keys=COUNTER#*",
        ]
    );
}

#[test]
fn a_query_on_an_index_is_on_the_index_with_its_partition_key_pattern() {
    let input = aws_sdk_dynamodb::operation::query::QueryInput::builder()
        .table_name("fleet")
        .index_name("GSI1")
        .key_condition_expression("#pk = :pk AND #sk = :sk")
        .expression_attribute_names("#pk", "GSI1PK")
        .expression_attribute_names("#sk", "GSI1SK")
        .expression_attribute_values(":pk", s("ORDER#o-1"))
        .expression_attribute_values(":sk", s("ORDER"))
        .build()
        .unwrap();
    assert_eq!(
        recorded("dynamodb", Input::erase(input)),
        ["dynamodb:Query index:fleet/GSI1 leading-keys=ORDER#*"]
    );
    let input = aws_sdk_dynamodb::operation::query::QueryInput::builder()
        .table_name("fleet")
        .key_condition_expression("begins_with(#sk, :prefix) AND #pk = :pk")
        .expression_attribute_values(":pk", s("USER#c-1"))
        .expression_attribute_values(":prefix", s("OUTBOX#o-1#"))
        .build()
        .unwrap();
    assert_eq!(
        recorded("dynamodb", Input::erase(input)),
        ["dynamodb:Query table:fleet leading-keys=USER#*"]
    );
}

#[test]
fn batch_calls_are_the_action_of_one_entry() {
    use aws_sdk_sqs::operation as op;
    let url = "http://localhost:5000/123456789012/fleet-orders";
    let delete = op::delete_message_batch::DeleteMessageBatchInput::builder()
        .queue_url(url)
        .build()
        .unwrap();
    assert_eq!(
        recorded("sqs", Input::erase(delete)),
        ["sqs:DeleteMessage queue:fleet-orders"]
    );
    let send = op::send_message_batch::SendMessageBatchInput::builder()
        .queue_url("https://sqs.eu-west-1.amazonaws.com/1/fleet-orders-dlq")
        .build()
        .unwrap();
    assert_eq!(
        recorded("sqs", Input::erase(send)),
        ["sqs:SendMessage queue:fleet-orders-dlq"]
    );
    let publish = aws_sdk_sns::operation::publish_batch::PublishBatchInput::builder()
        .topic_arn("arn:aws:sns:us-east-1:123456789012:fleet-events")
        .build()
        .unwrap();
    assert_eq!(
        recorded("sns", Input::erase(publish)),
        ["sns:Publish topic:fleet-events"]
    );
}

#[test]
fn a_decrypted_parameter_also_uses_kms_through_ssm() {
    let input = aws_sdk_ssm::operation::get_parameter::GetParameterInput::builder()
        .name("/fleet/email/smtp-password")
        .with_decryption(true)
        .build()
        .unwrap();
    assert_eq!(
        recorded("ssm", Input::erase(input)),
        [
            "kms:Decrypt kms-via-ssm:/fleet/email/smtp-password",
            "ssm:GetParameter parameter:/fleet/email/smtp-password",
        ]
    );
}

#[test]
fn a_send_is_on_the_sender_identity_and_its_configuration_set() {
    let input = aws_sdk_sesv2::operation::send_email::SendEmailInput::builder()
        .from_email_address("Fleet <no-reply@example.com>")
        .configuration_set_name("fleet-transactional")
        .build()
        .unwrap();
    assert_eq!(
        recorded("ses", Input::erase(input)),
        [
            "ses:SendEmail identity:no-reply@example.com",
            "ses:SendEmail configuration-set:fleet-transactional",
        ]
    );
}

#[test]
fn an_operation_without_a_mapping_is_recorded_on_every_resource() {
    let input = aws_sdk_sqs::operation::create_queue::CreateQueueInput::builder()
        .queue_name("q")
        .build()
        .unwrap();
    assert_eq!(recorded("sqs", Input::erase(input)), ["sqs:CreateQueue *"]);
}

#[test]
fn the_printed_report_reads_back() {
    let issued = IssuedActions::new();
    issued.record(
        "dynamodb:PutItem",
        Resource::Table("fleet".into()),
        vec!["USER#*".into(), "ORDER#*".into()],
    );
    issued.record("ses:GetAccount", Resource::Any, vec![]);
    issued.record(
        "dynamodb:Query",
        Resource::Index {
            table: "fleet".into(),
            index: "GSI1".into(),
        },
        vec!["ORDER#*".into()],
    );
    let stdout = format!("drained in time\n{REPORT_TITLE}\n{issued}\nsomething else\n");
    assert_eq!(parse_report(&stdout).unwrap(), issued.snapshot());
    assert!(parse_report("nothing").is_err());
}
