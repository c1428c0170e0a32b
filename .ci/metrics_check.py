"""Scrapes /metrics of a running server and parses it with Prometheus' own Python
parser (OpenMetrics text); checks that a request made just before is counted."""
import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

base, token = sys.argv[1], sys.argv[2]
auth = {"Authorization": "Bearer " + token}
urllib.request.urlopen(urllib.request.Request(base + "/fhir/Patient?_count=1", headers=auth)).read()
text = urllib.request.urlopen(urllib.request.Request(base + "/metrics", headers=auth)).read().decode()
families = {f.name: f for f in text_string_to_metric_families(text)}
requests = families["hep_http_requests"]
counted = [
    s for s in requests.samples
    if s.labels.get("route") == "/fhir/{type}" and s.labels.get("method") == "GET" and s.value >= 1
]
assert counted, "the search is not counted"
for name in ["hep_http_request_duration_seconds", "hep_database_outage",
             "hep_database_reads_waiting", "hep_audit_queue_records", "hep_job_lag_seconds",
             "hep_job_backlog", "hep_export_jobs", "hep_subscriptions",
             "hep_subscription_events_pending"]:
    assert name in families, name
print(f"/metrics: {len(families)} families parsed by prometheus_client, the request counted")
