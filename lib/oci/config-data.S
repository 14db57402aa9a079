/* Files from config/ compiled into libcell as NUL-terminated strings. */
	.section .rodata
	.global cell_config_spec_json
cell_config_spec_json:
	.incbin "config/spec.json"
	.byte 0
	.global cell_config_spec_rootless_json
cell_config_spec_rootless_json:
	.incbin "config/spec-rootless.json"
	.byte 0
	.global cell_config_seccomp_json
cell_config_seccomp_json:
	.incbin "config/seccomp.json"
	.byte 0
	.global cell_config_instance_json
cell_config_instance_json:
	.incbin "config/instance.json"
	.byte 0
	.section .note.GNU-stack,"",@progbits
