/* expect-error: line 3: this tree is not supported */
#ifndef CONFIG_SUPPORTED
#error "this tree is not supported"
#endif
