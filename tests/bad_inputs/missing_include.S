/* expect-error: line 2: nope.h: No such file */
#include "nope.h"
	ret
