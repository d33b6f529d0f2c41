	li r3, /* spans
	   lines */ 70000
	nop /* a */ frob r1
	nop /* joined
	*/ nop
	li r6, '~ + 0x10000
	li r4, 1 /* never closed
	li r5, 2
