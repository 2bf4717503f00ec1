"""One module per paper. Importing this package registers every model task with gin."""

from stpn_tf.models import stpn  # noqa: F401
from stpn_tf.models import bgm  # noqa: F401
from stpn_tf.models import hamnet  # noqa: F401
from stpn_tf.models import aumn  # noqa: F401
