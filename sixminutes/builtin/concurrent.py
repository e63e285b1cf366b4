"""Per carrier (profile × direction): calls in progress at each second of a window.

``peak_concurrent``'s Stat is that of the window's 360 per-second counts of calls in
progress (``start_epoch <= t < end_epoch``): ``max`` is the peak, ``sum / count`` the mean
(see :mod:`sixminutes.occupancy`: a call counts in every window it spans, and a late CDR
rewrites the earlier windows' Stats while they are within two hours of the newest)."""
from sixminutes.occupancy import Spans

SERIES = [Spans("peak_concurrent")]
