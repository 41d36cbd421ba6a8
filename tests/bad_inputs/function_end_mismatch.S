/* expect-error: line 5: .size expression for 'tdcall_ret' does not evaluate to a constant, as GNU as requires: 'tdcall_ret' is not defined in this file (the function open here is 'tdcall') */
.globl tdcall
.type tdcall, @function
tdcall: ret
.size tdcall_ret, . - tdcall_ret
