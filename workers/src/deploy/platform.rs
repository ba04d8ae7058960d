//! The ECS Fargate and EC2 pieces of an export. (Being built for issue 12.)

use super::{ExportContext, Platform, Template};

/// Adds what runs the workers on `ctx.platform` to `t` (nothing for [`Platform::None`]).
pub fn add(_t: &mut Template, ctx: &ExportContext<'_>) {
    match ctx.platform {
        Platform::None | Platform::Ecs | Platform::Ec2 => {}
    }
}
