#include "replay.h"
int shrink_main(int argc, char **argv, const struct ctl_runner *rn)
{
	(void)argc; (void)argv; (void)rn;
	return 3;
}
