// Compiled only by the include_order_enforced test, which expects it NOT to compile: policy
// sits above engine in docs/design.md's order, so engine's headers are invisible to it.
#include "engine/greylister.h"
