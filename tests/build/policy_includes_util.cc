// Compiled only by the include_order_allows_upward test: policy may use util, above it.
#include "policy/greylist_state.h"
#include "util/status.h"
