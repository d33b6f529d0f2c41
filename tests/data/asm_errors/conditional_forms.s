	.ifdef 1x
	.endif
	.ifc abc
	.endif
	.ifeqs "a", b
	.endif
	.ifgt
	.endif
	.if 1
	nop
