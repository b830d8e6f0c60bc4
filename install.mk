# make install [DESTDIR=...] [PREFIX=/usr/local]
#
#   $(BINDIR)      deferred-worker, deferred-cli
#   $(INCLUDEDIR)  deferred/*.h (task ABI, tasklets, C client)
#   $(LIBDIR)      libdqclient.a, libdq.a (the C client and the contract it
#                  needs) and pkgconfig/ngx-deferred.pc
#   $(PKGLIBDIR)   libdq_push.so (the push library: `library` it in the
#                  worker's configuration for push queues)
#   $(MODULEDIR)   $(MODULE_SO) (the Makefile's: $(MODULE_B)/, i.e. the
#                  build directory B, build/ for SAN=1), when it has been
#                  built (make module, ./build.sh build|module, or give
#                  MODULE_SO= the file nginx's configure + make modules made)
#   $(UNITDIR)     deferred-worker.service, its paths rewritten to $(BINDIR)
#   $(SYSUSERSDIR) deferred-worker.conf: the unit's user "deferred"
#                  (systemd-sysusers creates it; Debian's postinst uses adduser)
#   $(MANDIR)      deferred-worker(8), deferred-cli(1)
#   $(SYSCONFDIR)  deferred-worker.conf, a minimal one, only if none is there
#   $(DOCDIR)      README, docs/ and examples/ (configs, the Counter sample)
#
# `make programs` builds what install installs (no tests, no examples).

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DOCDIR     ?= $(PREFIX)/share/doc/ngx_deferred
MODULEDIR  ?= $(PREFIX)/lib/nginx/modules
PKGLIBDIR  ?= $(LIBDIR)/ngx_deferred
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(PREFIX)/etc
INSTALL    ?= install

INSTALL_PROGRAMS := $(B)/worker/deferred-worker $(B)/client/deferred-cli \
                    $(B)/libdqclient.a $(B)/libdq.a $(B)/push/libdq_push.so

.PHONY: programs
programs: $(INSTALL_PROGRAMS)

install: $(INSTALL_PROGRAMS)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR)/deferred \
	    $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) \
	    $(DESTDIR)$(DOCDIR)/examples/counter $(DESTDIR)$(SYSUSERSDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(SYSCONFDIR) $(DESTDIR)$(PKGLIBDIR)
	$(INSTALL) -m 755 $(B)/worker/deferred-worker $(B)/client/deferred-cli \
	    $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 644 include/deferred/*.h $(DESTDIR)$(INCLUDEDIR)/deferred/
	$(INSTALL) -m 644 $(B)/libdqclient.a $(B)/libdq.a $(DESTDIR)$(LIBDIR)/
	$(INSTALL) -m 755 $(B)/push/libdq_push.so $(DESTDIR)$(PKGLIBDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@REQUIRES@|$(DQ_CLIENT_PKGS)|g' \
	    ngx-deferred.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/ngx-deferred.pc
	sed -e 's|/usr/local/bin/|$(BINDIR)/|g' \
	    -e 's|/usr/local/share/doc/ngx_deferred|$(DOCDIR)|g' \
	    -e 's|/etc/deferred-worker.conf|$(SYSCONFDIR)/deferred-worker.conf|g' \
	    examples/systemd/deferred-worker.service \
	    > $(DESTDIR)$(UNITDIR)/deferred-worker.service
	$(INSTALL) -m 644 examples/systemd/deferred-worker.sysusers \
	    $(DESTDIR)$(SYSUSERSDIR)/deferred-worker.conf
	$(INSTALL) -m 644 man/*.1 $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 644 man/*.8 $(DESTDIR)$(MANDIR)/man8/
	[ -e $(DESTDIR)$(SYSCONFDIR)/deferred-worker.conf ] || \
	    $(INSTALL) -m 644 examples/deferred-worker.min.conf \
	        $(DESTDIR)$(SYSCONFDIR)/deferred-worker.conf
	$(INSTALL) -m 644 README.md docs/*.md docs/*.png $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -m 644 examples/deferred-worker.conf $(DESTDIR)$(DOCDIR)/examples/
	$(INSTALL) -m 644 examples/counter/counter.c \
	    examples/counter/nginx.conf.in $(DESTDIR)$(DOCDIR)/examples/counter/
	@if [ -f $(MODULE_SO) ]; then \
	    $(INSTALL) -d $(DESTDIR)$(MODULEDIR) && \
	    $(INSTALL) -m 644 $(MODULE_SO) $(DESTDIR)$(MODULEDIR)/ && \
	    echo "installed $(MODULEDIR)/ngx_http_deferred_module.so"; \
	else \
	    echo "make install: $(MODULE_SO) not built (make module): module not installed" >&2; \
	fi
