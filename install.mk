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
#   $(DOCDIR)      README and docs/

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DOCDIR     ?= $(PREFIX)/share/doc/ngx_deferred
MODULEDIR  ?= $(PREFIX)/lib/nginx/modules
PKGLIBDIR  ?= $(LIBDIR)/ngx_deferred
UNITDIR    ?= $(PREFIX)/lib/systemd/system
INSTALL    ?= install

install: $(B)/worker/deferred-worker $(B)/client/deferred-cli \
         $(B)/libdqclient.a $(B)/libdq.a $(B)/push/libdq_push.so
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR)/deferred \
	    $(DESTDIR)$(PKGLIBDIR) \
	    $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)
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
	    examples/systemd/deferred-worker.service \
	    > $(DESTDIR)$(UNITDIR)/deferred-worker.service
	$(INSTALL) -m 644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	@if [ -f $(MODULE_SO) ]; then \
	    $(INSTALL) -d $(DESTDIR)$(MODULEDIR) && \
	    $(INSTALL) -m 644 $(MODULE_SO) $(DESTDIR)$(MODULEDIR)/ && \
	    echo "installed $(MODULEDIR)/ngx_http_deferred_module.so"; \
	else \
	    echo "make install: $(MODULE_SO) not built (make module): module not installed" >&2; \
	fi
