	.if 1
	nop
	.else
	.else
	.endif
	.endif
	.error "stop here"
