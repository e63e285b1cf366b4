"""sixminutes: CDRs into 6-minute windows, KPIs per carrier and account, alerts."""

__version__ = "0.1.0"
