"""Post-call review: a call's stored events in, a scored report (JSON and HTML) out."""
