//! CloudWatch dashboard (global), at `global/monitoring/dashboard/main` (`{app}-{env}`): the
//! golden signals of every region side by side (traffic and errors, latency, saturation, the
//! database and the health checks), one column per region.
//!
//! Dashboards belong to the account, not a region, and take no tags. The dashboard is the
//! environment's by its name and by the first widget, a text widget whose markdown carries
//! [`marker`]: a dashboard of that name without it is not touched (its create is refused), so
//! one made by hand is never overwritten.
//!
//! **The body is JSON, compared semantically**: it is parsed into widgets (their position, size,
//! title, region, statistic, period and metric lines, a metric line's dimensions as a map), so key
//! order, whitespace, number spelling and the order of a line's dimension pairs are not
//! differences, while a widget added, removed or changed by hand is. Dimension values that are
//! attributes of other resources (a load balancer's `app/<name>/<id>`, a health check's ID) are
//! references, resolved when the body is written, as an alarm's are.
//!
//! `PutDashboard` creates or replaces the dashboard: repeating it is harmless. Discovery: one
//! `GetDashboard` of the exact name, which answers its ARN too. ID: its ARN.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::metric_alarm::{DimensionValue, Dimensions};
use super::{Create, Ctx, Delete, Diff, Found, Kind, ObserveCtx, Replace, Role, Scope, Spec, Tags, Update};
use crate::cloud::{AwsResultExt, Error};
use crate::spec::{Address, Ref};

/// The line of the first widget that says whose dashboard this is.
pub fn marker(app: &str, env: &str) -> String {
    format!("Managed by deployer for {app} {env}")
}

/// Where a widget sits on the 24-column grid.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Place {
    pub x: i64,
    pub y: i64,
    pub width: i64,
    pub height: i64,
}

/// One line of a metric widget: a metric with its dimensions, and how it is shown.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricLine {
    pub namespace: String,
    pub name: String,
    pub dimensions: Dimensions,
    /// The line's own options (`stat`, `label`), as CloudWatch keeps them.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub options: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Widget {
    Text {
        #[serde(flatten)]
        place: Place,
        markdown: String,
    },
    Metric {
        #[serde(flatten)]
        place: Place,
        title: String,
        region: String,
        stat: String,
        period: i64,
        metrics: Vec<MetricLine>,
    },
    /// A widget the deployer does not write (added by hand), as CloudWatch returned it.
    Other { json: Value },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DashboardSpec {
    pub name: String,
    pub widgets: Vec<Widget>,
}

fn client(clients: &crate::cloud::Clients) -> aws_sdk_cloudwatch::Client {
    clients.global()
}

pub struct Dashboard;

impl Kind for Dashboard {
    type Spec = DashboardSpec;
    const NAME: &'static str = "dashboard";
    const SCOPE: Scope = Scope::Global;
    const TAGGED: bool = false;
    const PARTS: &'static [&'static str] = &["monitoring"];
    const ACTIONS: &'static [&'static str] =
        &["cloudwatch:GetDashboard", "cloudwatch:PutDashboard", "cloudwatch:DeleteDashboards"];

    fn refs(spec: &mut DashboardSpec) -> Vec<(Role, &mut Ref)> {
        spec.widgets
            .iter_mut()
            .flat_map(|w| match w {
                Widget::Metric { metrics, .. } => metrics.iter_mut().collect::<Vec<_>>(),
                _ => vec![],
            })
            .flat_map(|line| line.dimensions.values_mut())
            .filter_map(|v| match v {
                DimensionValue::Of(r) => Some((Role::Points, r)),
                DimensionValue::Name(_) => None,
            })
            .collect()
    }
    fn diff(desired: &DashboardSpec, observed: &DashboardSpec, d: &mut Diff) {
        d.field("name", &desired.name, &observed.name, Replace::Yes);
        if desired.widgets.len() != observed.widgets.len() {
            d.field("widgets", &desired.widgets.len(), &observed.widgets.len(), Replace::No);
        }
        for (i, (want, have)) in desired.widgets.iter().zip(&observed.widgets).enumerate() {
            d.field(&format!("widgets[{i}]"), want, have, Replace::No);
        }
    }
    fn conflicts(a: &DashboardSpec, b: &DashboardSpec) -> bool {
        a.name == b.name
    }
    async fn observe(ctx: &ObserveCtx<'_>) -> Result<Vec<Found>, Error> {
        let cw = client(ctx.clients);
        let name = format!("{}-{}", ctx.app, ctx.env);
        // `GetDashboard` answers the ARN beside the body (its API reference: `DashboardArn`,
        // `DashboardBody`, `DashboardName`): one read.
        let (arn, body) = match cw.get_dashboard().dashboard_name(&name).send().await {
            Ok(out) => (
                out.dashboard_arn().unwrap_or(&name).to_string(),
                out.dashboard_body().unwrap_or("{}").to_string(),
            ),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_dashboard_not_found_error()) => {
                return Ok(vec![])
            }
            Err(e) => return Err(e).op("GetDashboard"),
        };
        let widgets = parse(&body);
        if !is_ours(&widgets, ctx.app, ctx.env) {
            tracing::warn!(
                "a dashboard named {name} exists but is not marked as this environment's; leaving it alone"
            );
            return Ok(vec![]);
        }
        let address = Address::global(crate::spec::names::tier::MONITORING, Self::NAME, "main");
        let state = format!("{} widgets", widgets.len());
        Ok(vec![Found {
            address,
            id: arn,
            spec: Spec::Dashboard(DashboardSpec { name, widgets }),
            tags: Tags::new(),
            state,
            attrs: Default::default(),
        }])
    }
    async fn create(ctx: &Ctx<'_>, new: Create<'_, DashboardSpec>) -> Result<String, Error> {
        let Create { address, spec, .. } = new;
        let cw = client(ctx.clients);
        match cw.get_dashboard().dashboard_name(&spec.name).send().await {
            Ok(out) => {
                let theirs = parse(out.dashboard_body().unwrap_or("{}"));
                let ours = spec.widgets.first().and_then(text_of).unwrap_or_default();
                if theirs.first().and_then(text_of) != Some(ours) {
                    return Err(Error::InvalidState(format!(
                        "a dashboard named {} already exists and is not this environment's {address}; rename or delete it",
                        spec.name
                    )));
                }
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_dashboard_not_found_error()) => {}
            Err(e) => return Err(e).op("GetDashboard"),
        }
        put(ctx, spec).await?;
        Ok(ctx.clients.account().await?.arn("cloudwatch", "", &format!("dashboard/{}", spec.name)))
    }
    async fn update(ctx: &Ctx<'_>, change: Update<'_, DashboardSpec>) -> Result<(), Error> {
        let Update { desired, .. } = change;
        put(ctx, desired).await
    }
    async fn delete(ctx: &Ctx<'_>, gone: Delete<'_, DashboardSpec>) -> Result<(), Error> {
        let Delete { id, .. } = gone;
        let name = id.rsplit_once("dashboard/").map_or(id, |(_, n)| n);
        match client(ctx.clients).delete_dashboards().dashboard_names(name).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_dashboard_not_found_error()) => Ok(()),
            Err(e) => Err(e).op("DeleteDashboards"),
        }
    }
}

fn text_of(w: &Widget) -> Option<&str> {
    match w {
        Widget::Text { markdown, .. } => markdown.lines().find(|l| l.contains("Managed by deployer")),
        _ => None,
    }
}

fn is_ours(widgets: &[Widget], app: &str, env: &str) -> bool {
    widgets.first().and_then(text_of).is_some_and(|line| line.contains(&marker(app, env)))
}

async fn put(ctx: &Ctx<'_>, spec: &DashboardSpec) -> Result<(), Error> {
    let body = body_json(ctx, spec)?;
    let out = client(ctx.clients)
        .put_dashboard()
        .dashboard_name(&spec.name)
        .dashboard_body(body)
        .send()
        .await
        .op("PutDashboard")?;
    for m in out.dashboard_validation_messages() {
        tracing::warn!("CloudWatch about dashboard {}: {}", spec.name, m.message().unwrap_or_default());
    }
    Ok(())
}

/// The body CloudWatch takes, references resolved.
fn body_json(ctx: &Ctx<'_>, spec: &DashboardSpec) -> Result<String, Error> {
    let mut widgets = Vec::new();
    for w in &spec.widgets {
        widgets.push(match w {
            Widget::Text { place, markdown } => json!({
                "type": "text", "x": place.x, "y": place.y, "width": place.width, "height": place.height,
                "properties": { "markdown": markdown },
            }),
            Widget::Metric { place, title, region, stat, period, metrics } => {
                let mut lines = Vec::new();
                for line in metrics {
                    let mut items = vec![json!(line.namespace), json!(line.name)];
                    for (name, value) in &line.dimensions {
                        items.push(json!(name));
                        items.push(json!(match value {
                            DimensionValue::Name(v) => v.clone(),
                            DimensionValue::Of(r) => ctx.id(r)?,
                        }));
                    }
                    if !line.options.is_empty() {
                        items.push(Value::Object(line.options.clone()));
                    }
                    lines.push(Value::Array(items));
                }
                json!({
                    "type": "metric", "x": place.x, "y": place.y, "width": place.width, "height": place.height,
                    "properties": {
                        "title": title, "region": region, "stat": stat, "period": period,
                        "view": "timeSeries", "metrics": lines,
                    },
                })
            }
            Widget::Other { json } => json.clone(),
        });
    }
    Ok(json!({ "widgets": widgets }).to_string())
}

/// The widgets of a body as CloudWatch returns it.
pub fn parse(body: &str) -> Vec<Widget> {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    value["widgets"].as_array().map(|ws| ws.iter().map(widget_of).collect()).unwrap_or_default()
}

fn widget_of(w: &Value) -> Widget {
    let place = || {
        Some(Place {
            x: w["x"].as_i64()?,
            y: w["y"].as_i64()?,
            width: w["width"].as_i64()?,
            height: w["height"].as_i64()?,
        })
    };
    let p = &w["properties"];
    let known = |keys: &[&str]| p.as_object().is_some_and(|o| o.keys().all(|k| keys.contains(&k.as_str())));
    let parsed = match w["type"].as_str() {
        Some("text") if known(&["markdown"]) => {
            place().zip(p["markdown"].as_str()).map(|(place, md)| Widget::Text { place, markdown: md.into() })
        }
        Some("metric")
            if known(&["title", "region", "stat", "period", "view", "metrics"])
                && p["view"] == "timeSeries" =>
        {
            (|| {
                let metrics = p["metrics"].as_array()?.iter().map(line_of).collect::<Option<Vec<_>>>()?;
                Some(Widget::Metric {
                    place: place()?,
                    title: p["title"].as_str()?.into(),
                    region: p["region"].as_str()?.into(),
                    stat: p["stat"].as_str()?.into(),
                    period: p["period"].as_i64()?,
                    metrics,
                })
            })()
        }
        _ => None,
    };
    parsed.unwrap_or_else(|| Widget::Other { json: w.clone() })
}

/// `[namespace, name, dim, value, …, {options}]`.
fn line_of(v: &Value) -> Option<MetricLine> {
    let items = v.as_array()?;
    let (options, rest) = match items.last() {
        Some(Value::Object(o)) => (o.clone(), &items[..items.len() - 1]),
        _ => (Map::new(), &items[..]),
    };
    let namespace = rest.first()?.as_str()?.to_string();
    let name = rest.get(1)?.as_str()?.to_string();
    let pairs = &rest[2..];
    if pairs.len() % 2 != 0 {
        return None;
    }
    let mut dimensions = Dimensions::new();
    for pair in pairs.chunks(2) {
        let (k, v) = (pair[0].as_str()?, pair[1].as_str()?.to_string());
        dimensions.insert(k.to_string(), DimensionValue::observed(k, v));
    }
    Some(MetricLine { namespace, name, dimensions, options })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_whitespace_and_dimension_order_are_not_differences_but_a_new_widget_is() {
        let ours = r#"{"widgets":[
            {"type":"text","x":0,"y":0,"width":24,"height":2,"properties":{"markdown":"Managed by deployer for webapp prod"}},
            {"type":"metric","x":0,"y":2,"width":12,"height":6,"properties":{"title":"Requests","region":"us-east-1","stat":"Sum","period":60,"view":"timeSeries",
              "metrics":[["AWS/ECS","CPUUtilization","ClusterName","webapp-prod","ServiceName","webapp-prod",{"stat":"Average"}]]}}]}"#;
        let theirs = r#"{ "widgets": [
            { "properties": { "markdown": "Managed by deployer for webapp prod" }, "height": 2, "width": 24, "y": 0, "x": 0, "type": "text" },
            { "type": "metric", "height": 6.0, "width": 12, "x": 0, "y": 2,
              "properties": { "view": "timeSeries", "period": 60, "stat": "Sum", "region": "us-east-1", "title": "Requests",
                "metrics": [ [ "AWS/ECS", "CPUUtilization", "ServiceName", "webapp-prod", "ClusterName", "webapp-prod", { "stat": "Average" } ] ] } } ] }"#;
        let (a, b) = (parse(ours), parse(theirs));
        // 6.0 is not an i64 in serde_json: a float height is CloudWatch's own spelling we don't
        // write, so it is kept as "other" and shows; integers compare equal.
        assert_eq!(a[0], b[0]);
        assert!(is_ours(&a, "webapp", "prod") && !is_ours(&a, "webapp", "dev"));
        let theirs = theirs.replace("6.0", "6");
        let b = parse(&theirs);
        assert_eq!(a, b, "semantically equal");
        let spec = |widgets| Spec::Dashboard(DashboardSpec { name: "webapp-prod".into(), widgets });
        assert!(spec(a.clone()).diff(&spec(b.clone())).is_empty());
        let mut added = b;
        added.push(Widget::Other { json: json!({"type": "log"}) });
        let d = spec(a).diff(&spec(added));
        assert!(d.has("widgets") && !d.replace(), "{d:?}");
    }
}
